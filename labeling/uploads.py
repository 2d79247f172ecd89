"""Uploaded files of an import: images, PDFs (one PNG per page) and the text files tasks are parsed from.

Each file becomes a FileUpload kept in media storage under `uploads/<schema>/<project>/<upload>/<token>/`,
so organizations never share a path and the upload's id can be read back from any of its names. Tasks
point at the files with relative `/data/upload/...` URLs (Label Studio's style), which
labeling.api_uploads serves to the organization's members only.

Writes are all or nothing: an import that fails leaves no FileUpload row, no task and no stored file.
"""

import io
import json
import mimetypes
import os
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import pypdfium2 as pdfium
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils.text import get_valid_filename
from PIL import Image, ImageOps, UnidentifiedImageError

from labeling import services
from labeling.importing import TEXT_FORMATS, UNDEFINED_DATA_KEY, ImportFormatError, extension_of, parse_text_file
from labeling.models import FileUpload, ImportJob, Project

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
PDF_EXTENSION = ".pdf"
# What Pillow must find inside an image, whatever its extension says (MPO: a camera's JPEG).
IMAGE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP", "TIFF"})
THUMBNAIL_SIZE = (256, 256)
STORAGE_PREFIX = "uploads/"
URL_PREFIX = "/data/upload/"
SUPPORTED = "images (JPEG, PNG, GIF, BMP, WebP, TIFF), PDF, JSON, JSON lines, CSV, TSV or TXT"

# PDFium is not thread-safe, and ASGI runs sync views on several threads.
_pdfium_lock = threading.Lock()


class Kind:
    IMAGE = "image"
    PDF = "pdf"
    TEXT = "text"


def kind_of(name: str) -> str | None:
    extension = extension_of(name)
    if extension in IMAGE_EXTENSIONS:
        return Kind.IMAGE
    if extension == PDF_EXTENSION:
        return Kind.PDF
    if extension in TEXT_FORMATS:
        return Kind.TEXT
    return None


def file_url(name: str) -> str:
    """The relative URL of a stored name: it works under /o/<slug>/ and on the bare host alike."""
    return URL_PREFIX + name.removeprefix(STORAGE_PREFIX)


def upload_urls(upload: FileUpload) -> dict:
    return {
        "file": file_url(upload.file.name) if upload.file else None,
        "pages": [file_url(name) for name in upload.pages],
        "thumbnail": file_url(upload.thumbnail.name) if upload.thumbnail else None,
    }


def _invalid(name: str, message: str) -> ValidationError:
    return ValidationError({"file": f"{name}: {message}"})


# --- checking files (no database, no storage) ----------------------------------------------------

@dataclass
class CheckedFile:
    """An uploaded file that passed the checks, with what they learned about it."""

    upload: object  # Django's UploadedFile
    name: str
    kind: str
    content_type: str
    fmt: str
    raw: bytes = b""  # text files only
    tasks: list[dict] = field(default_factory=list)  # text files only
    thumbnail: bytes = b""  # images only
    width: int | None = None
    height: int | None = None
    page_count: int = 0


def _thumbnail_and_size(image: Image.Image) -> tuple[bytes, int, int]:
    """A JPEG preview (at most 256 px) and the size as a browser shows it (EXIF orientation applied)."""
    shown = ImageOps.exif_transpose(image) or image
    width, height = shown.size
    preview = shown.copy()
    preview.thumbnail(THUMBNAIL_SIZE)
    if preview.mode in ("RGBA", "LA", "P", "PA"):
        preview = preview.convert("RGBA")
        flat = Image.new("RGB", preview.size, "white")
        flat.paste(preview, mask=preview.getchannel("A"))
        preview = flat
    elif preview.mode not in ("RGB", "L"):
        preview = preview.convert("RGB")
    buffer = io.BytesIO()
    preview.save(buffer, "JPEG", quality=85)
    return buffer.getvalue(), width, height


def _check_image(checked: CheckedFile) -> None:
    upload = checked.upload
    upload.seek(0)
    try:
        with Image.open(upload) as image:
            if image.format not in IMAGE_FORMATS:
                raise _invalid(checked.name, f"a {image.format} image is not supported; use {SUPPORTED}.")
            image.load()  # decodes every pixel: truncated or corrupt data fails here
            checked.content_type = image.get_format_mimetype() or checked.content_type
            checked.thumbnail, checked.width, checked.height = _thumbnail_and_size(image)
    except ValidationError:
        raise
    except Image.DecompressionBombError:
        raise _invalid(checked.name, "the image has too many pixels.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _invalid(checked.name, f"not a valid image ({exc}).") from exc


def _pdf_source(upload):
    """What PDFium opens: the temporary file of a large upload, else its bytes."""
    if hasattr(upload, "temporary_file_path"):
        return upload.temporary_file_path()
    upload.seek(0)
    return upload.read()


@contextmanager
def _opened_pdf(checked: CheckedFile):
    """The uploaded PDF, opened under the PDFium lock (PDFium is not thread-safe)."""
    with _pdfium_lock:
        try:
            document = pdfium.PdfDocument(_pdf_source(checked.upload))
        except pdfium.PdfiumError as exc:
            raise _invalid(checked.name, f"not a readable PDF ({exc}).") from exc
        try:
            yield document
        finally:
            document.close()


def _check_pdf(checked: CheckedFile) -> None:
    with _opened_pdf(checked) as document:
        checked.page_count = len(document)
    if checked.page_count == 0:
        raise _invalid(checked.name, "the PDF has no pages.")
    if checked.page_count > settings.UPLOAD_PDF_MAX_PAGES:
        raise _invalid(checked.name, f"the PDF has {checked.page_count} pages; at most "
                                     f"{settings.UPLOAD_PDF_MAX_PAGES} are accepted (split it).")


def check_file(upload) -> CheckedFile:
    """Check one uploaded file: a supported kind, within the size limit, and readable as that kind."""
    name = os.path.basename(upload.name or "") or "upload"
    kind = kind_of(name)
    if kind is None:
        raise _invalid(name, f"unsupported file type; use {SUPPORTED}.")
    if upload.size > settings.UPLOAD_MAX_FILE_BYTES:
        raise _invalid(name, f"{upload.size} bytes is over the limit of {settings.UPLOAD_MAX_FILE_BYTES} bytes.")
    checked = CheckedFile(upload=upload, name=name, kind=kind, fmt=extension_of(name).lstrip("."),
                          content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
    if kind == Kind.TEXT:
        upload.seek(0)
        checked.raw = upload.read()
        try:
            checked.fmt, checked.tasks = parse_text_file(name=name, raw=checked.raw)
        except ImportFormatError as exc:
            raise ValidationError({"file": str(exc)}) from exc
    elif kind == Kind.IMAGE:
        _check_image(checked)
    else:
        checked.content_type = "application/pdf"
        _check_pdf(checked)
    return checked


# --- storing -------------------------------------------------------------------------------------

def _safe_name(name: str) -> str:
    stem, extension = os.path.splitext(name)
    try:
        stem = get_valid_filename(stem)[:100]
    except SuspiciousFileOperation:
        stem = "file"
    return f"{stem}{extension.lower()}"


def _folder_of(upload: FileUpload) -> str:
    # The schema keeps organizations apart; the upload id lets a name be traced back to its row; the
    # token keeps a replaced file's new names clear of its old ones.
    return f"{STORAGE_PREFIX}{connection.schema_name}/{upload.project_id}/{upload.pk}/{secrets.token_hex(4)}/"


class _StoredFiles:
    """Names written during a write, deleted again when it fails."""

    def __init__(self):
        self.names: list[str] = []

    def save(self, name: str, content) -> str:
        saved = default_storage.save(name, content)
        self.names.append(saved)
        return saved

    def discard(self) -> None:
        for name in self.names:
            default_storage.delete(name)


def _render_pdf(checked: CheckedFile, folder: str, stored: _StoredFiles) -> tuple[list[str], Image.Image]:
    """Store one PNG per page; returns their names and the first page's image."""
    names, first = [], None
    scale = settings.UPLOAD_PDF_RENDER_SCALE
    with _opened_pdf(checked) as document:
        try:
            for index in range(len(document)):
                page = document[index]
                try:
                    longest = max(page.get_size()) or 1
                    image = page.render(scale=min(scale, settings.UPLOAD_PDF_MAX_PAGE_PIXELS / longest)).to_pil()
                finally:
                    page.close()
                buffer = io.BytesIO()
                image.save(buffer, "PNG")
                names.append(stored.save(f"{folder}page-{index + 1:04d}.png", ContentFile(buffer.getvalue())))
                if first is None:
                    first = image
        except pdfium.PdfiumError as exc:
            raise _invalid(checked.name, f"a page cannot be rendered ({exc}).") from exc
    return names, first


def _store(upload: FileUpload, checked: CheckedFile, stored: _StoredFiles) -> None:
    """Write the file and what is derived from it; fills the row's names and size fields (unsaved)."""
    folder = _folder_of(upload)
    checked.upload.seek(0)
    upload.file.name = stored.save(folder + _safe_name(checked.name), checked.upload)
    upload.pages, upload.thumbnail.name = [], ""
    upload.width = upload.height = None
    thumbnail = checked.thumbnail
    if checked.kind == Kind.PDF:
        upload.pages, first_page = _render_pdf(checked, folder, stored)
        thumbnail, upload.width, upload.height = _thumbnail_and_size(first_page)
    elif checked.kind == Kind.IMAGE:
        upload.width, upload.height = checked.width, checked.height
    if thumbnail:
        upload.thumbnail.name = stored.save(f"{folder}thumbnail.jpg", ContentFile(thumbnail))


def _names_of(upload: FileUpload) -> list[str]:
    return [name for name in (upload.file.name, upload.thumbnail.name, *upload.pages) if name]


def _delete_after_commit(names: list[str]) -> None:
    if names:
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])


# --- tasks from uploads --------------------------------------------------------------------------

@dataclass
class UploadImport:
    file_upload_ids: list[int]
    found_formats: dict[str, int] = field(default_factory=dict)
    data_columns: list[str] = field(default_factory=list)
    result: services.ImportResult | None = None  # None: not committed, or queued as `job`
    job: ImportJob | None = None


def image_source(project: Project) -> tuple[str, bool]:
    """The data key of the project's first Image tag and whether it takes a list (`valueList`).
    Without an Image tag the value goes under the undefined key, which tasks_import gives to the
    config's only variable (or refuses)."""
    for obj in services.config_parse(project.label_config).objects.values():
        if obj.type == "Image":
            return obj.value, obj.value_list
    return UNDEFINED_DATA_KEY, False


def document_task_data(upload: FileUpload, *, key: str, value_list: bool) -> dict:
    """The data of the one task an image or PDF becomes."""
    urls = [file_url(name) for name in upload.pages] or [file_url(upload.file.name)]
    if value_list:
        return {key: urls}
    data = {key: urls[0]}
    if upload.pages and key != "pages":
        # A single-image tag shows the first page; every page's URL stays in the task's data as "pages".
        data["pages"] = urls
    return data


def _tasks_from(project: Project, uploads: list[FileUpload], text_tasks: dict[int, list[dict]]):
    """The tasks of some uploads, in upload order, each carrying the id of the upload it comes from."""
    key, value_list = image_source(project)
    tasks, formats = [], {}
    for upload in uploads:
        kind = kind_of(upload.original_name or upload.file.name)
        if kind == Kind.TEXT:
            made = text_tasks[upload.pk]
        else:
            made = [{"data": document_task_data(upload, key=key, value_list=value_list)}]
        fmt = extension_of(upload.original_name or upload.file.name).lstrip(".")
        formats[fmt] = formats.get(fmt, 0) + 1
        tasks.extend({**task, "file_upload": upload.pk} for task in made)
    return tasks, formats


def _create_tasks(*, project: Project, user, uploads: list[FileUpload], text_tasks: dict[int, list[dict]],
                  return_task_ids: bool) -> UploadImport:
    tasks, formats = _tasks_from(project, uploads, text_tasks)
    columns = sorted({column for task in tasks for column in task["data"]})
    outcome = UploadImport(file_upload_ids=[u.pk for u in uploads], found_formats=formats, data_columns=columns)
    if len(tasks) > settings.IMPORT_SYNC_MAX_TASKS:
        outcome.job = services.import_job_create(project=project, tasks=tasks, user=user, found_formats=formats,
                                                 data_columns=columns, return_task_ids=return_task_ids)
        ImportJob.objects.filter(pk=outcome.job.pk).update(file_upload_ids=outcome.file_upload_ids)
        return outcome
    outcome.result = services.tasks_import(project=project, tasks=tasks, user=user)
    return outcome


# --- services ------------------------------------------------------------------------------------

def file_uploads_import(*, project: Project, files: list, user, commit_to_project: bool = True,
                        return_task_ids: bool = False) -> UploadImport:
    """Store uploaded files as FileUploads and (unless `commit_to_project` is false) make their tasks:
    one per image or PDF, the parsed ones of a text file. All or nothing, stored files included."""
    checked = [check_file(upload) for upload in files]
    stored = _StoredFiles()
    try:
        with transaction.atomic():
            uploads = FileUpload.objects.bulk_create([
                FileUpload(project=project, original_name=item.name[:512], size=item.upload.size,
                           content_type=item.content_type[:128], created_by=user)
                for item in checked
            ])
            for upload, item in zip(uploads, checked, strict=True):
                _store(upload, item, stored)
            FileUpload.objects.bulk_update(uploads, ["file", "pages", "thumbnail", "width", "height"])
            if not commit_to_project:
                tasks, _, formats = [], [], {}
                for item in checked:
                    formats[item.fmt] = formats.get(item.fmt, 0) + 1
                    tasks.extend(item.tasks)
                return UploadImport(file_upload_ids=[u.pk for u in uploads], found_formats=formats,
                                    data_columns=sorted({c for task in tasks for c in task["data"]}))
            text_tasks = {upload.pk: item.tasks for upload, item in zip(uploads, checked, strict=True)}
            return _create_tasks(project=project, user=user, uploads=uploads, text_tasks=text_tasks,
                                 return_task_ids=return_task_ids)
    except BaseException:
        # The rows rolled back; the files would outlive them. (A caller's own outer transaction
        # rolling back later is not seen here: call this outside one.)
        stored.discard()
        raise


def _read_text_tasks(upload: FileUpload) -> list[dict]:
    with upload.file.open("rb") as handle:
        raw = handle.read()
    try:
        return parse_text_file(name=upload.original_name or upload.file.name, raw=raw)[1]
    except ImportFormatError as exc:
        raise ValidationError({"file": str(exc)}) from exc


@transaction.atomic
def file_uploads_reimport(*, project: Project, user, file_upload_ids: list[int],
                          return_task_ids: bool = False) -> UploadImport:
    """Make the tasks of uploads stored earlier (the two-step import). Tasks those uploads made
    before are replaced, as Label Studio does."""
    if not isinstance(file_upload_ids, list) or not file_upload_ids or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in file_upload_ids
    ):
        raise ValidationError({"file_upload_ids": "Give a non-empty list of file upload ids."})
    found = {u.pk: u for u in FileUpload.objects.filter(project=project, pk__in=file_upload_ids)}
    unknown = [i for i in file_upload_ids if i not in found]
    if unknown:
        raise ValidationError({"file_upload_ids": f"Not uploads of this project: {unknown[:20]}"})
    uploads = [found[i] for i in dict.fromkeys(file_upload_ids)]
    text_tasks = {u.pk: _read_text_tasks(u) for u in uploads if kind_of(u.original_name or u.file.name) == Kind.TEXT}
    previous = list(project.tasks.filter(file_upload_id__in=list(found)).values_list("pk", flat=True))
    if previous:
        services.tasks_delete(project=project, task_ids=previous)
    return _create_tasks(project=project, user=user, uploads=uploads, text_tasks=text_tasks,
                         return_task_ids=return_task_ids)


def file_upload_replace(*, upload: FileUpload, file, user) -> FileUpload:
    """Replace an upload's file (LS's PATCH). Its tasks from an image or PDF point at the new file."""
    checked = check_file(file)
    old_kind = kind_of(upload.original_name or upload.file.name)
    if (checked.kind == Kind.TEXT) != (old_kind == Kind.TEXT):
        raise _invalid(checked.name, "a task file replaces a task file, an image or PDF an image or PDF.")
    old_names = _names_of(upload)
    stored = _StoredFiles()
    try:
        with transaction.atomic():
            upload = FileUpload.objects.select_for_update().select_related("project").get(pk=upload.pk)
            _store(upload, checked, stored)
            upload.original_name = checked.name[:512]
            upload.size = checked.upload.size
            upload.content_type = checked.content_type[:128]
            upload.save()
            if checked.kind != Kind.TEXT:
                _retarget_tasks(upload)
            _delete_after_commit(old_names)
    except BaseException:
        stored.discard()
        raise
    return upload


def _retarget_tasks(upload: FileUpload) -> None:
    key, value_list = image_source(upload.project)
    if key == UNDEFINED_DATA_KEY:
        keys = services.config_parse(upload.project.label_config).data_keys
        if len(keys) != 1:
            return
        key = next(iter(keys))
    data = document_task_data(upload, key=key, value_list=value_list)
    # A single-image task drops the page list of a PDF it no longer shows.
    drop = "pages" if not value_list and key != "pages" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE labeling_task SET data = (data - %s) || %s::jsonb, updated_at = now() WHERE file_upload_id = %s",
            [drop, json.dumps(data), upload.pk],
        )


@transaction.atomic
def file_uploads_delete(*, project: Project, ids: list[int] | None = None) -> int:
    """Delete some (or all) of a project's uploads; their stored files go once this commits. Their
    tasks stay (without a file upload)."""
    queryset = file_uploads_of(project=project, ids=ids)
    names = [name for upload in queryset.only("file", "thumbnail", "pages") for name in _names_of(upload)]
    _, per_model = queryset.delete()
    _delete_after_commit(names)
    return per_model.get(FileUpload._meta.label, 0)


def file_upload_delete(*, upload: FileUpload) -> None:
    file_uploads_delete(project=upload.project, ids=[upload.pk])


# --- selectors -----------------------------------------------------------------------------------

def file_uploads_of(*, project: Project, ids: list[int] | None = None) -> QuerySet[FileUpload]:
    queryset = FileUpload.objects.filter(project=project)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    return queryset.order_by("id")


def file_upload_owning(*, name: str) -> FileUpload | None:
    """The upload of the current schema that a stored name belongs to (its file, a page or its
    thumbnail), else None: a name from another organization never matches."""
    parts = name.split("/")
    if len(parts) < 6 or parts[0] + "/" != STORAGE_PREFIX or not parts[3].isdigit():
        return None
    upload = FileUpload.objects.filter(pk=int(parts[3])).first()
    if upload is None or name not in _names_of(upload):
        return None
    return upload
