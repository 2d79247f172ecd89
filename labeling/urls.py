"""Labeling routes, mounted under /api/. Label Studio's clients call paths with and without the
trailing slash (POST too), so every route answers both ways."""

from django.urls import re_path

from labeling import api


def route(pattern: str, view, name: str | None = None):
    """`pattern` without its trailing slash; matches with or without one."""
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


api_urlpatterns = [
    route(r"projects", api.ProjectListCreateApi, "project-list"),
    route(r"projects/counts", api.ProjectCountsApi),
    route(r"projects/validate", api.LabelConfigValidateApi),
    route(r"projects/(?P<pk>\d+)", api.ProjectDetailApi, "project-detail"),
    route(r"projects/(?P<pk>\d+)/validate", api.LabelConfigValidateApi),
    route(r"projects/(?P<pk>\d+)/duplicate", api.ProjectDuplicateApi),
    route(r"projects/(?P<pk>\d+)/import", api.ProjectImportApi),
    route(r"projects/(?P<pk>\d+)/imports/(?P<import_pk>\d+)", api.ImportJobApi),
    route(r"projects/(?P<pk>\d+)/tasks", api.ProjectTasksApi),
    route(r"projects/(?P<pk>\d+)/next", api.ProjectNextTaskApi),
    route(r"projects/(?P<pk>\d+)/export", api.ProjectExportApi),
    route(r"projects/(?P<pk>\d+)/export/formats", api.ExportFormatsApi),
    route(r"projects/(?P<pk>\d+)/exports", api.ExportSnapshotListCreateApi),
    route(r"projects/(?P<pk>\d+)/exports/(?P<export_pk>\d+)", api.ExportSnapshotDetailApi),
    route(r"projects/(?P<pk>\d+)/exports/(?P<export_pk>\d+)/convert", api.ExportSnapshotConvertApi),
    route(r"projects/(?P<pk>\d+)/exports/(?P<export_pk>\d+)/download", api.ExportSnapshotDownloadApi),
    route(r"templates", api.TemplatesApi),
    route(r"tasks", api.TaskListCreateApi, "task-list"),
    route(r"tasks/(?P<pk>\d+)", api.TaskDetailApi, "task-detail"),
    route(r"tasks/(?P<pk>\d+)/annotations", api.TaskAnnotationsApi),
    route(r"annotations/(?P<pk>\d+)", api.AnnotationDetailApi),
    route(r"predictions", api.PredictionListCreateApi),
    route(r"predictions/(?P<pk>\d+)", api.PredictionDetailApi),
]
