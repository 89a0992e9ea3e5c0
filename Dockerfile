# titanoframe bridge and renderer: one image, two commands (compose.yaml picks one per service).
# Secrets never enter the image: they arrive at run time from .env (env_file in compose.yaml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Runtime dependencies only (pyproject's [project] dependencies, no dev extras). The sources
# are copied to a scratch folder that is removed once the package is installed.
WORKDIR /usr/src/titanoframe
COPY pyproject.toml README.md ./
COPY common ./common
COPY bridge ./bridge
COPY renderer ./renderer
RUN pip install . \
    && cd / && rm -rf /usr/src/titanoframe

# An unprivileged user for the services. Mount points are created here with their owners so
# that a fresh named volume mounted on them starts with the same owner:
#   /config/cache  the renderer's cache (renderer.cache_dir "./cache" next to /config/config.yaml)
#   /broker-auth   passwd and acl from `broker-users`, which runs as the broker's uid 1883
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin titanoframe \
    && install -d -o root -g root -m 0755 /config \
    && install -d -o titanoframe -g titanoframe -m 0750 /config/cache \
    && install -d -o 1883 -g 1883 -m 0700 /broker-auth

USER titanoframe
WORKDIR /config

# 8080: renderer.listen default; 9110: bridge.metrics_listen (set to 0.0.0.0:9110 in compose).
EXPOSE 8080 9110

# compose.yaml sets a healthcheck per service; this default fits the renderer.
ENV HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]

CMD ["python", "-m", "renderer", "--config", "/config/config.yaml"]
