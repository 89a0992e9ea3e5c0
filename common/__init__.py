"""What the bridge, the renderer and the tools share: the config, the wire contract (topics,
manifest format, folder picture ids, signed URLs, caption formats), the Immich client, the
paho client set-up, logging, Prometheus exposition, sd_notify, and the broker's users and ACL.

It imports nothing else of the project and never Pillow (docs/architecture.md, "Layout").
"""
