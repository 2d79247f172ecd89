"""The labeling domain, in each organization's own schema.

Users are referenced with db_constraint=False (ARCHITECTURE.md, Tenancy): the user table is in
the public schema and users are soft-deleted, never cascaded.
"""

from django.db import models

from platform_core.fields import user_fk


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
    content_type = models.CharField(max_length=128, blank=True, default="")
    # Images derived from the upload: one per PDF page (storage names, in page order), and a preview.
    pages = models.JSONField(default=list, blank=True)
    thumbnail = models.FileField(upload_to="thumbnails/%Y/%m/%d/", max_length=512, blank=True)
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
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
        indexes = [models.Index(fields=["task", "user"], name="draft_task_user_idx")]

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


class TaskAssignment(models.Model):
    """A task assigned to a user, to annotate (AN) or to review (RE)."""

    class Type(models.TextChoices):
        ANNOTATE = "AN", "Annotate"
        REVIEW = "RE", "Review"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    assignee = user_fk("+")
    type = models.CharField(max_length=2, choices=Type.choices, default=Type.ANNOTATE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["task", "assignee", "type"], name="uniq_task_assignment")]
        indexes = [models.Index(fields=["assignee", "type", "task"], name="task_assignment_user_idx")]

    def __str__(self) -> str:
        return f"Task {self.task_id} assigned to {self.assignee_id} ({self.type})"


class AnnotationHistory(models.Model):
    """One revision of an annotation (LS's ActionEnum). Plain ids: history outlives what it records."""

    class Action(models.TextChoices):
        PREDICTION = "prediction"
        PROPAGATED_ANNOTATION = "propagated_annotation"
        IMPORTED = "imported"
        SUBMITTED = "submitted"
        UPDATED = "updated"
        SKIPPED = "skipped"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        FIXED_AND_ACCEPTED = "fixed_and_accepted"
        DELETED_REVIEW = "deleted_review"

    annotation_id = models.BigIntegerField(null=True, blank=True)
    task_id = models.BigIntegerField(null=True, blank=True)
    project_id = models.BigIntegerField(null=True, blank=True)
    draft_id = models.BigIntegerField(null=True, blank=True)
    review_id = models.BigIntegerField(null=True, blank=True)
    comment_id = models.BigIntegerField(null=True, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices, null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    lead_time = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["annotation_id", "id"], name="annotation_history_ann_idx"),
            models.Index(fields=["project_id", "id"], name="annotation_history_proj_idx"),
        ]

    def __str__(self) -> str:
        return f"History {self.pk} of annotation {self.annotation_id} ({self.action})"


class AnnotationReview(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="reviews")
    created_by = user_fk("+")
    accepted = models.BooleanField(default=False)
    result = models.JSONField(null=True, blank=True)
    remove_from_queue = models.BooleanField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    previous_annotation_history = models.ForeignKey(
        AnnotationHistory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fixed_annotation_history = models.ForeignKey(
        AnnotationHistory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_annotation_history = models.ForeignKey(
        AnnotationHistory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Review {self.pk} of annotation {self.annotation_id}"


class Comment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comments")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    annotation = models.ForeignKey(Annotation, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="comments")
    draft = models.ForeignKey(AnnotationDraft, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="comments")
    text = models.TextField(null=True, blank=True)
    region_ref = models.JSONField(null=True, blank=True)
    classifications = models.JSONField(null=True, blank=True)
    is_resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_by = user_fk("+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "id"], name="comment_task_idx")]

    def __str__(self) -> str:
        return f"Comment {self.pk} on task {self.task_id}"


class DataManagerView(models.Model):
    """A data manager tab: filters, ordering, hidden columns (LS's View)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="views")
    user = user_fk("+", null=True, blank=True)
    data = models.JSONField(default=dict, blank=True, null=True)
    filter_group = models.JSONField(null=True, blank=True)
    ordering = models.JSONField(default=list, blank=True, null=True)
    selected_items = models.JSONField(null=True, blank=True)
    order = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"View {self.pk} of project {self.project_id}"


class Webhook(models.Model):
    """An outgoing webhook; organization-wide when `project` is null (LS's Webhook)."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2048)
    headers = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    send_payload = models.BooleanField(default=True)
    send_for_all_actions = models.BooleanField(default=True)
    actions = models.JSONField(default=list, blank=True)
    # Signs each delivery (HMAC-SHA256). Stored encrypted (platform_core.crypto); write-only in the API.
    secret_encrypted = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Webhook {self.pk} to {self.url}"


class WebhookDelivery(models.Model):
    """One event sent (or being retried) to one webhook."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    action = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    response_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} to webhook {self.webhook_id} ({self.status})"


class ActivityLog(models.Model):
    """One API call made in this organization (LSE's ActivityLog)."""

    user_id = models.BigIntegerField(null=True, blank=True)
    email = models.CharField(max_length=256, blank=True, default="")
    request_method = models.CharField(max_length=10)
    request_url = models.CharField(max_length=256)
    response_code = models.CharField(max_length=3)
    duration = models.IntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=1024, blank=True, default="")
    http_referer = models.CharField(max_length=1024, blank=True, default="")
    project_id = models.BigIntegerField(null=True, blank=True)
    workspace_owner_id = models.BigIntegerField(null=True, blank=True)
    user_session = models.CharField(max_length=8, null=True, blank=True)
    extra_data = models.JSONField(null=True, blank=True)
    datetime = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user_id", "id"], name="activity_log_user_idx"),
                   models.Index(fields=["project_id", "id"], name="activity_log_project_idx")]

    def __str__(self) -> str:
        return f"{self.request_method} {self.request_url} ({self.response_code})"


class ProjectMember(models.Model):
    """A user added to a project (LS `/api/projects/{id}/members/`): Reviewers and Annotators see
    only the projects they are members of (directly or through the project's workspace)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = user_fk("+")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="uniq_project_member")]
        indexes = [models.Index(fields=["user"], name="project_member_user_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} in project {self.project_id}"


class ProjectRole(models.Model):
    """A per-project override of a member's organization role (LS `/api/projects/roles/`)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="roles")
    user = user_fk("+")
    role = models.CharField(max_length=2)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="uniq_project_role")]
        indexes = [models.Index(fields=["user"], name="project_role_user_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} is {self.role} in project {self.project_id}"


class AnnotatorPause(models.Model):
    """An annotator paused in a project: no tasks from the label stream, no new annotations,
    until the pause is deleted (LS `/api/projects/{pk}/members/{user_pk}/pauses/`)."""

    class Reason(models.TextChoices):
        MANUAL = "MANUAL", "Manual"
        BEHAVIOR_BASED = "BEHAVIOR_BASED", "Behavior-based"
        ANNOTATOR_EVALUATION = "ANNOTATOR_EVALUATION", "Annotator evaluation"
        ANNOTATION_LIMIT = "ANNOTATION_LIMIT", "Annotation limit"
        CUSTOM_SCRIPT = "CUSTOM_SCRIPT", "Custom script"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pauses")
    user = user_fk("+")
    paused_by = user_fk("+", null=True, blank=True)
    reason = models.CharField(max_length=32, choices=Reason.choices, default=Reason.MANUAL)
    verbose_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "user"], name="annotator_pause_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} paused in project {self.project_id}"
