"""Labeling routes, mounted under /api/. Every route answers with and without the trailing slash
(platform_core.routing.route). Each feature module keeps its own route list."""

from labeling import api, api_activity, api_data_manager, api_review, api_uploads, api_webhooks
from platform_core.routing import route

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
] + (
    api_review.urlpatterns + api_uploads.urlpatterns + api_data_manager.urlpatterns
    + api_webhooks.urlpatterns + api_activity.urlpatterns
)
