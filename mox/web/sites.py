"""The login-protected web sites on the HTTPS listeners: webmail (`/webmail/`), account pages
(`/account/`) and admin pages (`/admin/`), all sharing one `Sessions` (mox.web.session).

`SiteEnv` is what a site gets from the running server; `site_routes` collects each site's routes
for `mox.web.app.create_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from mox.config.load import LoadedConfig
from mox.server.authenticator import ConfigAuthenticator
from mox.store import Store
from mox.web.session import Sessions

if TYPE_CHECKING:
    from mox.queue.queue import Queue
    from mox.webapi import WebApi

__all__ = ["SiteEnv", "site_routes"]


@dataclass
class SiteEnv:
    config: LoadedConfig
    store: Store
    authenticator: ConfigAuthenticator
    webapi: WebApi  # message composition and submission (Send), shared with the web API
    queue: Queue | None  # the outgoing queue (in localserve it delivers to our own SMTP port)
    localserve: bool = False
    sessions: Sessions = field(default_factory=Sessions)
    # Re-read and apply the config file (the admin pages write it first); raises
    # mox.config.load.ConfigError, leaving the running config as it was, when the file is bad.
    reload_config: Callable[[], Awaitable[object]] | None = None  # returns what needs a restart


def site_routes(env: SiteEnv) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    from mox import webmail  # here: mox.webmail needs this module's SiteEnv

    routes += webmail.routes(env)
    from mox.webaccount.site import account_routes
    from mox.webadmin.site import admin_routes

    routes += account_routes(env) + admin_routes(env)
    return routes
