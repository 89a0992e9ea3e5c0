"""Renderer: the HTTP service that turns Immich previews into exact 480x320 BMPs."""
