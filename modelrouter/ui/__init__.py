"""The dashboard at ``/ui``: pages served by the router itself, behind an admin login.

Everything the browser loads is a file of this package (``static/``): hand-written
HTML, CSS and JavaScript modules, no build step and no request to any other origin.
The pages read the admin API (``/admin/*``) and a few dashboard endpoints
(``/ui/api/*``) with a session cookie (:mod:`modelrouter.api.session`).
:func:`modelrouter.ui.routes.ui_routes` adds the routes; without admin keys there are
none and ``/ui`` is a 404, like ``/admin``.
"""
