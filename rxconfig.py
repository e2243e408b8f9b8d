import reflex as rx

from app.config import get_settings

settings = get_settings()
settings.data_dir.mkdir(parents=True, exist_ok=True)

config = rx.Config(
    app_name="app",
    redis_url=settings.redis_url or None,
    frontend_port=settings.app_port,
    backend_port=settings.app_port,
    api_url=settings.public_url,
    deploy_url=settings.public_url,
    cors_allowed_origins=settings.allowed_origins,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    disable_plugins=[rx.plugins.SitemapPlugin],
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", gray_color="slate", radius="medium"))],
)
