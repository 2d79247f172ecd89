"""The labeling domain, in each organization's own schema.

Users are referenced with db_constraint=False (ARCHITECTURE.md, Tenancy): the user table is in
the public schema and users are soft-deleted, never cascaded.
"""

from django.conf import settings
from django.db import models


def user_fk(related_name: str, **kwargs):
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, db_constraint=False, on_delete=models.DO_NOTHING,
        related_name=related_name, **kwargs,
    )


class Sampling(models.TextChoices):
    SEQUENTIAL = "Sequential sampling", "Tasks are ordered by Data manager ordering"
    UNIFORM = "Uniform sampling", "Tasks are chosen randomly"
    UNCERTAINTY = "Uncertainty sampling", "Tasks are chosen according to model uncertainty scores"


class SkipQueue(models.TextChoices):
    REQUEUE_FOR_ME = "REQUEUE_FOR_ME", "Requeue for me"
    REQUEUE_FOR_OTHERS = "REQUEUE_FOR_OTHERS", "Requeue for others"
    IGNORE_SKIPPED = "IGNORE_SKIPPED", "Ignore skipped"


class Project(models.Model):
    title = models.CharField(max_length=50, blank=True, default="")
    description = models.TextField(blank=True, default="")
    label_config = models.TextField(blank=True, default="")
    parsed_label_config = models.JSONField(default=dict, blank=True)
    expert_instruction = models.TextField(blank=True, default="")
    show_instruction = models.BooleanField(default=False)
    show_skip_button = models.BooleanField(default=True)
    enable_empty_annotation = models.BooleanField(default=True)
    show_annotation_history = models.BooleanField(default=False)
    show_collab_predictions = models.BooleanField(default=True)
    evaluate_predictions_automatically = models.BooleanField(default=False)
    reveal_preannotations_interactively = models.BooleanField(default=False)
    show_ground_truth_first = models.BooleanField(default=False)
    show_overlap_first = models.BooleanField(default=False)
    # Hide other annotators' work from annotators (LS: "show_unused_data_columns..." is unrelated).
    annotator_sees_others = models.BooleanField(default=False)
    require_comment_on_skip = models.BooleanField(default=False)
    color = models.CharField(max_length=16, blank=True, default="#FFFFFF")
    maximum_annotations = models.IntegerField(default=1)
    overlap_cohort_percentage = models.IntegerField(default=100)
    min_annotations_to_start_training = models.IntegerField(default=0)
    is_published = models.BooleanField(default=False)
    is_draft = models.BooleanField(default=False)
    model_version = models.TextField(blank=True, default="")
    sampling = models.CharField(max_length=32, choices=Sampling.choices, default=Sampling.SEQUENTIAL)
    skip_queue = models.CharField(max_length=32, choices=SkipQueue.choices, default=SkipQueue.REQUEUE_FOR_OTHERS)
    task_data_login = models.CharField(max_length=256, blank=True, null=True)
    task_data_password = models.CharField(max_length=256, blank=True, null=True)
    control_weights = models.JSONField(default=dict, blank=True, null=True)
    custom_task_lock_ttl = models.IntegerField(null=True, blank=True)
    pinned_at = models.DateTimeField(null=True, blank=True)
    workspace_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_by = user_fk("+", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Next per-project task number (LS `inner_id`); bumped in bulk by imports.
    next_inner_id = models.BigIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title or f"Project {self.pk}"


class FileUpload(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="file_uploads")
    file = models.FileField(upload_to="uploads/%Y/%m/%d/", max_length=512)
    original_name = models.CharField(max_length=512, blank=True, default="")
    size = models.BigIntegerField(default=0)
    created_by = user_fk("+", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.original_name or self.file.name


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    data = models.JSONField()
    meta = models.JSONField(default=dict, blank=True, null=True)
    inner_id = models.BigIntegerField(null=True, blank=True)
    is_labeled = models.BooleanField(default=False)
    overlap = models.IntegerField(default=1)
    total_annotations = models.IntegerField(default=0)
    cancelled_annotations = models.IntegerField(default=0)
    total_predictions = models.IntegerField(default=0)
    comment_count = models.IntegerField(default=0)
    unresolved_comment_count = models.IntegerField(default=0)
    last_comment_updated_at = models.DateTimeField(null=True, blank=True)
    file_upload = models.ForeignKey(FileUpload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    import_job_id = models.BigIntegerField(null=True, blank=True)
    updated_by = user_fk("+", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["project", "id"], name="task_project_id_idx"),
            models.Index(fields=["project", "is_labeled", "id"], name="task_project_labeled_idx"),
        ]

    def __str__(self) -> str:
        return f"Task {self.pk}"


class Annotation(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotations")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    result = models.JSONField(default=list)
    completed_by = user_fk("+", null=True, blank=True)
    updated_by = user_fk("+", null=True, blank=True)
    was_cancelled = models.BooleanField(default=False)
    ground_truth = models.BooleanField(default=False)
    lead_time = models.FloatField(null=True, blank=True)
    parent_prediction = models.ForeignKey(
        "Prediction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent_annotation = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_action = models.CharField(max_length=64, null=True, blank=True)
    import_id = models.BigIntegerField(null=True, blank=True)
    draft_created_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["task", "id"], name="annotation_task_idx"),
            models.Index(fields=["project", "id"], name="annotation_project_idx"),
        ]

    def __str__(self) -> str:
        return f"Annotation {self.pk}"


class Prediction(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="predictions")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="predictions")
    result = models.JSONField(default=list)
    score = models.FloatField(null=True, blank=True)
    model_version = models.TextField(blank=True, default="")
    cluster = models.IntegerField(null=True, blank=True)
    neighbors = models.JSONField(null=True, blank=True)
    mislabeling = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "id"], name="prediction_task_idx")]

    def __str__(self) -> str:
        return f"Prediction {self.pk}"


class AnnotationDraft(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="drafts")
    annotation = models.ForeignKey(Annotation, null=True, blank=True, on_delete=models.CASCADE, related_name="drafts")
    user = user_fk("+")
    result = models.JSONField(default=list)
    lead_time = models.FloatField(null=True, blank=True)
    was_postponed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Draft {self.pk}"


class ImportJob(models.Model):
    """A large import, polled at /api/projects/{id}/imports/{import_pk}/ (LSE shape)."""

    class Status(models.TextChoices):
        CREATED = "created"
        IN_PROGRESS = "in_progress"
        FAILED = "failed"
        COMPLETED = "completed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATED)
    error = models.TextField(blank=True, default="")
    task_count = models.IntegerField(default=0)
    annotation_count = models.IntegerField(default=0)
    prediction_count = models.IntegerField(default=0)
    duration = models.FloatField(null=True, blank=True)
    file_upload_ids = models.JSONField(default=list)
    found_formats = models.JSONField(default=dict)
    data_columns = models.JSONField(default=list)
    task_ids = models.JSONField(default=list)
    return_task_ids = models.BooleanField(default=False)
    # The parsed tasks, kept in media storage until the job has run.
    payload = models.FileField(upload_to="imports/", max_length=512, blank=True)
    created_by = user_fk("+", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.status})"


class TaskLock(models.Model):
    """A task handed out by the label stream is reserved for one user until `expires_at`."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="locks")
    user = user_fk("+")
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="uniq_task_lock_task_user")]
        indexes = [models.Index(fields=["task", "expires_at"], name="task_lock_expiry_idx")]

    def __str__(self) -> str:
        return f"Lock of task {self.task_id} for {self.user_id}"



class ExportStatus(models.TextChoices):
    CREATED = "created", "Created"
    IN_PROGRESS = "in_progress", "In progress"
    FAILED = "failed", "Failed"
    COMPLETED = "completed", "Completed"


class ExportSnapshot(models.Model):
    """A frozen JSON export of a project, kept in media storage; other formats convert from it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    title = models.CharField(max_length=2048, blank=True, default="")
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.CREATED)
    file = models.FileField(upload_to="exports/", max_length=512, blank=True)
    md5 = models.CharField(max_length=128, blank=True, default="")
    counters = models.JSONField(default=dict, blank=True)
    task_filter_options = models.JSONField(default=dict, blank=True)
    annotation_filter_options = models.JSONField(default=dict, blank=True)
    serialization_options = models.JSONField(default=dict, blank=True)
    traceback = models.TextField(blank=True, default="")
    created_by = user_fk("+", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Export {self.pk} of project {self.project_id} ({self.status})"


class ConvertedExport(models.Model):
    snapshot = models.ForeignKey(ExportSnapshot, on_delete=models.CASCADE, related_name="converted_formats")
    export_type = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.CREATED)
    file = models.FileField(upload_to="exports/", max_length=512, blank=True)
    traceback = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "export_type"], name="uniq_converted_export")]

    def __str__(self) -> str:
        return f"{self.export_type} of export {self.snapshot_id} ({self.status})"
