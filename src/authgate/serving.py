"""``python -m authgate.serving``: the production server, the process ``authgate serve
--production`` becomes once it has checked the settings and migrated.

gunicorn with gevent workers (``authgate.production_server``). gevent's monkey-patching has to
come before anything uses ``ssl``, ``socket`` or ``threading`` (urllib3 keeps ``ssl.SSLContext``
from its own import, for one): so this patches first and imports authgate after. The settings
come from the environment, where ``authgate serve`` put its command-line options.
"""

from __future__ import annotations


def main() -> None:
    from gevent import monkey

    monkey.patch_all()

    from authgate.production_server import run_production_server

    run_production_server()


if __name__ == "__main__":
    main()
