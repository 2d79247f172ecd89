"""Cloud storage connections of a project (tenant schema), as Label Studio has them.

One table for every provider and both directions: what differs between S3, GCS, Azure, Redis and
local files is a provider's options (plain JSON) and secrets (one encrypted JSON blob, decrypted
only to build a provider; never returned by the API). `kind` is the API's storage type.

ImportLink ties an imported task to the object it came from (unique per storage and key: a re-sync
adds only new objects); ExportLink remembers where an annotation was written, to overwrite it on
update and delete it when the annotation goes (with `can_delete_objects`).
"""

from django.db import models

from labeling.models import Project, Task


class StorageStatus(models.TextChoices):
    INITIALIZED = "initialized"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"


class Storage(models.Model):
    class Direction(models.TextChoices):
        IMPORT = "import"
        EXPORT = "export"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="storages")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    kind = models.CharField(max_length=16)
    title = models.CharField(max_length=256, blank=True, default="")
    description = models.TextField(blank=True, default="")
    # Common fields of every provider (LS's names) live in columns; the provider's own in `options`.
    prefix = models.TextField(blank=True, default="")
    regex_filter = models.TextField(blank=True, default="")
    use_blob_urls = models.BooleanField(default=False)
    recursive_scan = models.BooleanField(default=False)
    presign = models.BooleanField(default=True)
    presign_ttl = models.PositiveSmallIntegerField(default=1)  # minutes, as in Label Studio
    can_delete_objects = models.BooleanField(default=False)
    options = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.TextField(blank=True, default="")
    synchronizable = models.BooleanField(default=True)
    status = models.CharField(max_length=24, choices=StorageStatus.choices, default=StorageStatus.INITIALIZED)
    last_sync = models.DateTimeField(null=True, blank=True)
    last_sync_count = models.PositiveIntegerField(null=True, blank=True)
    last_sync_job = models.CharField(max_length=256, blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["project", "direction", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.direction} storage {self.pk} of project {self.project_id}"


class ImportLink(models.Model):
    storage = models.ForeignKey(Storage, on_delete=models.CASCADE, related_name="import_links")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="storage_links")
    key = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["storage", "key"], name="storages_import_link_key")]

    def __str__(self) -> str:
        return f"task {self.task_id} <- {self.key}"


class ExportLink(models.Model):
    storage = models.ForeignKey(Storage, on_delete=models.CASCADE, related_name="export_links")
    # No foreign key: the link outlives its annotation until the object is deleted.
    annotation_id = models.BigIntegerField()
    key = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["storage", "annotation_id"], name="storages_export_link")]

    def __str__(self) -> str:
        return f"annotation {self.annotation_id} -> {self.key}"
