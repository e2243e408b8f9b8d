"""The Reflex app: pages, the HTTP API on the same port, and background work."""

import reflex as rx
from starlette.types import ASGIApp

from app import pages  # noqa: F401  fills the page table
from app.api import MeteringFirst, create_api
from app.api.security_headers import SecurityHeadersMiddleware
from app.api.upload_limit import UploadLimitMiddleware
from app.components.card_form import stripe_head_scripts
from app.components.layout import PAGES
from app.config import get_settings
from app.jobs.worker import run_worker_forever
from app.logs import configure_logging
from app.state.live import run_live_updates
from app.state.session import ActorChangeReset

configure_logging()

API = create_api()


class _Console(rx.App):
    def __call__(self) -> ASGIApp:
        """The backend as the server runs it. Outermost, the security headers on every response;
        then the metering API's lean path, before Reflex's own middleware and routing; then Reflex's
        backend, with the API mounted in it and the upload cap around both."""
        return SecurityHeadersMiddleware(MeteringFirst(super().__call__(), API))


app = _Console(
    stylesheets=["/styles.css"],
    head_components=stripe_head_scripts(),
    api_transformer=[API, UploadLimitMiddleware],
)

app.add_middleware(ActorChangeReset())

for page, options in PAGES:
    app.add_page(page, **options)

app.register_lifespan_task(run_live_updates, app=app)
if get_settings().run_jobs_in_app:
    app.register_lifespan_task(run_worker_forever)
