"""``authgate avatars import-dir``: the avatar images an earlier version wrote as files under
``<instance>/avatars/`` go into the configured storage (the database, or the S3 bucket).

Each keeps its name, so the ``avatar_url`` of its user stays the same and keeps working. Run it
once after ``authgate db upgrade`` (again is harmless: an image already stored is left alone);
with ``--delete-files`` each file is removed once its image is stored, after which the instance
folder holds no avatar.
"""

from __future__ import annotations

from pathlib import Path

import click

from authgate.backends.avatar_storage import avatar_files_in
from authgate.bootstrap import build_service
from authgate.config import load_settings

__all__ = ["avatars"]


@click.group()
def avatars() -> None:
    """Avatar images: bring in the files of an earlier version."""


@avatars.command("import-dir")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder of the image files [default: AUTHGATE_INSTANCE_PATH/avatars].",
)
@click.option(
    "--delete-files", is_flag=True, help="Remove each file once its image is in the storage."
)
def avatars_import_dir(directory: Path | None, delete_files: bool) -> None:
    """Store the avatar image files of an earlier version (<name>.jpg, <name>.png) under
    their own names, so that users' avatar URLs keep working."""
    settings = load_settings()
    folder = directory or settings.instance_path / "avatars"
    service = build_service(settings)
    try:
        images = service.avatars.images
        imported = present = 0
        for path in avatar_files_in(folder):
            if images.import_image(path.name, path.read_bytes()):
                imported += 1
            else:
                present += 1
            if delete_files:
                path.unlink()
        where = images.storage.describe()
    finally:
        service.close()
    deleted = " (their files deleted)" if delete_files and imported + present else ""
    click.echo(
        f"Imported {imported} avatar image(s) from {folder} into {where}; "
        f"{present} were there already{deleted}."
    )
