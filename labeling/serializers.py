"""Label Studio shapes: input validation with DRF serializers, output as plain dicts (fast).

DRF's BooleanField already takes booleans as the SDKs send them: true, True, 1, "true", "1".
"""

from django.db import connection
from rest_framework import serializers

from labeling.models import Annotation, Prediction, Project, Sampling, SkipQueue, Task


class ProjectInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=50, required=False, allow_blank=True, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    label_config = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    expert_instruction = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    show_instruction = serializers.BooleanField(required=False)
    show_skip_button = serializers.BooleanField(required=False)
    enable_empty_annotation = serializers.BooleanField(required=False)
    show_annotation_history = serializers.BooleanField(required=False)
    show_collab_predictions = serializers.BooleanField(required=False)
    evaluate_predictions_automatically = serializers.BooleanField(required=False)
    reveal_preannotations_interactively = serializers.BooleanField(required=False)
    show_ground_truth_first = serializers.BooleanField(required=False)
    show_overlap_first = serializers.BooleanField(required=False)
    annotator_sees_others = serializers.BooleanField(required=False)
    require_comment_on_skip = serializers.BooleanField(required=False)
    color = serializers.CharField(max_length=16, required=False, allow_blank=True, allow_null=True)
    maximum_annotations = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    overlap_cohort_percentage = serializers.IntegerField(min_value=0, max_value=100, required=False)
    min_annotations_to_start_training = serializers.IntegerField(min_value=0, required=False)
    is_published = serializers.BooleanField(required=False)
    is_draft = serializers.BooleanField(required=False)
    model_version = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    sampling = serializers.ChoiceField(choices=Sampling.choices, required=False, allow_null=True)
    skip_queue = serializers.ChoiceField(choices=SkipQueue.choices, required=False, allow_null=True)
    task_data_login = serializers.CharField(max_length=256, required=False, allow_blank=True, allow_null=True)
    task_data_password = serializers.CharField(max_length=256, required=False, allow_blank=True, allow_null=True)
    control_weights = serializers.JSONField(required=False, allow_null=True)
    custom_task_lock_ttl = serializers.IntegerField(min_value=1, max_value=86400, required=False, allow_null=True)
    pinned_at = serializers.DateTimeField(required=False, allow_null=True)
    workspace = serializers.IntegerField(required=False, allow_null=True)

    def validate_title(self, value):
        if value and len(value.strip()) < 3:
            raise serializers.ValidationError("A project title has 3 to 50 characters.")
        return value

    def to_fields(self) -> dict:
        """Validated data as model field values (None for text fields means empty)."""
        fields = dict(self.validated_data)
        if "workspace" in fields:
            fields["workspace_id"] = fields.pop("workspace")
        for name in ("title", "description", "label_config", "expert_instruction", "color", "model_version"):
            if name in fields and fields[name] is None:
                fields[name] = ""
        for name in ("sampling", "skip_queue"):
            if name in fields and fields[name] is None:
                fields.pop(name)
        return fields


def user_simple(user_id, users: dict) -> dict | None:
    user = users.get(user_id)
    if user is None:
        return None
    return {"id": user.pk, "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
            "avatar": None}


def project_payload(project: Project, *, users: dict | None = None) -> dict:
    users = users or {}
    counts = {name: getattr(project, name, None) for name in (
        "task_number", "finished_task_number", "num_tasks_with_annotations", "total_annotations_number",
        "skipped_annotations_number", "total_predictions_number",
    )}
    return {
        "id": project.pk,
        "title": project.title,
        "description": project.description,
        "label_config": project.label_config,
        "parsed_label_config": project.parsed_label_config,
        "expert_instruction": project.expert_instruction,
        "show_instruction": project.show_instruction,
        "show_skip_button": project.show_skip_button,
        "enable_empty_annotation": project.enable_empty_annotation,
        "show_annotation_history": project.show_annotation_history,
        "show_collab_predictions": project.show_collab_predictions,
        "evaluate_predictions_automatically": project.evaluate_predictions_automatically,
        "reveal_preannotations_interactively": project.reveal_preannotations_interactively,
        "show_ground_truth_first": project.show_ground_truth_first,
        "show_overlap_first": project.show_overlap_first,
        "annotator_sees_others": project.annotator_sees_others,
        "require_comment_on_skip": project.require_comment_on_skip,
        "color": project.color,
        "maximum_annotations": project.maximum_annotations,
        "overlap_cohort_percentage": project.overlap_cohort_percentage,
        "min_annotations_to_start_training": project.min_annotations_to_start_training,
        "is_published": project.is_published,
        "is_draft": project.is_draft,
        "model_version": project.model_version,
        "sampling": project.sampling,
        "skip_queue": project.skip_queue,
        "control_weights": project.control_weights,
        "custom_task_lock_ttl": project.custom_task_lock_ttl,
        "pinned_at": project.pinned_at,
        "workspace": project.workspace_id,
        "organization": getattr(connection.tenant, "pk", None),
        "created_by": user_simple(project.created_by_id, users),
        "created_at": project.created_at,
        "updated_at": project.updated_at,
        "config_has_control_tags": bool(project.parsed_label_config),
        "task_number": counts["task_number"] or 0,
        "finished_task_number": counts["finished_task_number"] or 0,
        "num_tasks_with_annotations": counts["num_tasks_with_annotations"] or 0,
        "total_annotations_number": counts["total_annotations_number"] or 0,
        "skipped_annotations_number": counts["skipped_annotations_number"] or 0,
        "total_predictions_number": counts["total_predictions_number"] or 0,
        "useful_annotation_number": (counts["total_annotations_number"] or 0),
        "ground_truth_number": 0,
        "queue_total": counts["task_number"] or 0,
        "queue_done": counts["finished_task_number"] or 0,
    }


def annotation_payload(annotation: Annotation) -> dict:
    return {
        "id": annotation.pk,
        "result": annotation.result,
        "task": annotation.task_id,
        "project": annotation.project_id,
        "completed_by": annotation.completed_by_id,
        "updated_by": annotation.updated_by_id,
        "was_cancelled": annotation.was_cancelled,
        "ground_truth": annotation.ground_truth,
        "lead_time": annotation.lead_time,
        "parent_prediction": annotation.parent_prediction_id,
        "parent_annotation": annotation.parent_annotation_id,
        "last_action": annotation.last_action,
        "import_id": annotation.import_id,
        "draft_created_at": annotation.draft_created_at,
        "created_at": annotation.created_at,
        "updated_at": annotation.updated_at,
    }


def prediction_payload(prediction: Prediction) -> dict:
    return {
        "id": prediction.pk,
        "result": prediction.result,
        "score": prediction.score,
        "model_version": prediction.model_version,
        "cluster": prediction.cluster,
        "neighbors": prediction.neighbors,
        "mislabeling": prediction.mislabeling,
        "task": prediction.task_id,
        "project": prediction.project_id,
        "created_at": prediction.created_at,
        "updated_at": prediction.updated_at,
    }


def task_payload(task: Task, *, annotations=None, predictions=None) -> dict:
    payload = {
        "id": task.pk,
        "data": task.data,
        "meta": task.meta or {},
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "is_labeled": task.is_labeled,
        "overlap": task.overlap,
        "inner_id": task.inner_id,
        "total_annotations": task.total_annotations,
        "cancelled_annotations": task.cancelled_annotations,
        "total_predictions": task.total_predictions,
        "comment_count": task.comment_count,
        "unresolved_comment_count": task.unresolved_comment_count,
        "last_comment_updated_at": task.last_comment_updated_at,
        "project": task.project_id,
        "updated_by": task.updated_by_id,
        "file_upload": task.file_upload_id,
    }
    if annotations is not None:
        payload["annotations"] = [annotation_payload(a) for a in annotations]
        payload["drafts"] = []
    if predictions is not None:
        payload["predictions"] = [prediction_payload(p) for p in predictions]
    return payload


class TaskInputSerializer(serializers.Serializer):
    data = serializers.JSONField()
    meta = serializers.JSONField(required=False, allow_null=True)
    project = serializers.IntegerField(required=False)

    def validate_data(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Task data must be a JSON object.")
        return value

    def validate_meta(self, value):
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("Task meta must be a JSON object.")
        return value


class AnnotationInputSerializer(serializers.Serializer):
    result = serializers.JSONField(required=False)
    was_cancelled = serializers.BooleanField(required=False)
    ground_truth = serializers.BooleanField(required=False)
    lead_time = serializers.FloatField(required=False, allow_null=True, min_value=0)
    parent_prediction = serializers.IntegerField(required=False, allow_null=True)
    parent_annotation = serializers.IntegerField(required=False, allow_null=True)
    completed_by = serializers.IntegerField(required=False, allow_null=True)


class PredictionInputSerializer(serializers.Serializer):
    task = serializers.IntegerField()
    result = serializers.JSONField()
    score = serializers.FloatField(required=False, allow_null=True)
    model_version = serializers.CharField(required=False, allow_blank=True, allow_null=True)


def export_payload(snapshot, *, users: dict | None = None) -> dict:
    return {
        "id": snapshot.pk,
        "title": snapshot.title,
        "status": snapshot.status,
        "md5": snapshot.md5,
        "counters": snapshot.counters,
        "created_at": snapshot.created_at,
        "finished_at": snapshot.finished_at,
        "created_by": user_simple(snapshot.created_by_id, users or {}),
        "task_filter_options": snapshot.task_filter_options,
        "annotation_filter_options": snapshot.annotation_filter_options,
        "serialization_options": snapshot.serialization_options,
        "converted_formats": [
            {"id": c.pk, "export_type": c.export_type, "status": c.status, "traceback": c.traceback or None}
            for c in snapshot.converted_formats.all()
        ],
    }


def draft_payload(draft) -> dict:
    return {
        "id": draft.pk, "user": draft.user_id, "task": draft.task_id, "annotation": draft.annotation_id,
        "result": draft.result, "lead_time": draft.lead_time, "was_postponed": draft.was_postponed,
        "created_at": draft.created_at, "updated_at": draft.updated_at,
    }


def history_payload(entry, *, with_result: bool = True) -> dict:
    return {
        "id": entry.pk, "annotation_id": entry.annotation_id, "task_id": entry.task_id,
        "project_id": entry.project_id, "organization_id": getattr(connection.tenant, "pk", None),
        "draft_id": entry.draft_id, "review_id": entry.review_id, "comment_id": entry.comment_id,
        "comment": None, "created_by": entry.created_by_id, "action": entry.action,
        "result": entry.result if with_result else None, "lead_time": entry.lead_time,
        "started_at": entry.started_at, "created_at": entry.created_at,
    }


def review_payload(review) -> dict:
    return {
        "id": review.pk, "annotation": review.annotation_id, "created_by": review.created_by_id,
        "accepted": review.accepted, "result": review.result, "remove_from_queue": review.remove_from_queue,
        "started_at": review.started_at, "created_at": review.created_at,
        "previous_annotation_history": review.previous_annotation_history_id,
        "fixed_annotation_history": review.fixed_annotation_history_id,
        "last_annotation_history": review.last_annotation_history_id,
        "state": "accepted" if review.accepted else "rejected",
    }


def comment_payload(comment, *, users: dict | None = None) -> dict:
    return {
        "id": comment.pk, "text": comment.text, "annotation": comment.annotation_id, "draft": comment.draft_id,
        "task": comment.task_id, "project": comment.project_id, "region_ref": comment.region_ref,
        "classifications": comment.classifications, "is_resolved": comment.is_resolved,
        "resolved_at": comment.resolved_at,
        "created_by": user_simple(comment.created_by_id, users) if users is not None else comment.created_by_id,
        "created_at": comment.created_at, "updated_at": comment.updated_at,
        "state": "resolved" if comment.is_resolved else "open",
    }


def assignment_payload(assignment) -> dict:
    return {
        "id": assignment.pk, "task": assignment.task_id, "assignee": assignment.assignee_id,
        "type": assignment.type, "created_at": assignment.created_at, "state": "assigned",
    }
