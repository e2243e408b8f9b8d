"""The Reflex app: pages, the HTTP API on the same port, and background work."""

import reflex as rx

from app import pages  # noqa: F401  fills the page table
from app.api import create_api
from app.api.security_headers import SecurityHeadersMiddleware
from app.api.upload_limit import UploadLimitMiddleware
from app.components.card_form import stripe_head_scripts
from app.components.layout import PAGES
from app.config import get_settings
from app.jobs.worker import run_worker_forever
from app.logs import configure_logging
from app.state.session import ActorChangeReset

configure_logging()

app = rx.App(
    stylesheets=["/styles.css"],
    head_components=stripe_head_scripts(),
    # The API is mounted first; the upload cap and the headers then wrap it and the pages Reflex serves.
    api_transformer=[create_api(), UploadLimitMiddleware, SecurityHeadersMiddleware],
)

app.add_middleware(ActorChangeReset())

for page, options in PAGES:
    app.add_page(page, **options)

if get_settings().run_jobs_in_app:
    app.register_lifespan_task(run_worker_forever)
