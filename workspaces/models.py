"""Workspaces (tenant schema): folders of projects with their own members.

Project.workspace_id names the workspace a project lives in; visibility of a project follows
workspace membership and role (accounts.access, labeling.selectors.projects_visible_to).
"""

from django.db import models

from platform_core.fields import user_fk


class Workspace(models.Model):
    title = models.CharField(max_length=1000)
    description = models.TextField(blank=True, default="")
    color = models.CharField(max_length=16, blank=True, default="#FFFFFF")
    is_personal = models.BooleanField(default=False)
    is_archived = models.BooleanField(default=False)
    created_by = user_fk("+", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            # One personal workspace per user.
            models.UniqueConstraint(fields=["created_by"], condition=models.Q(is_personal=True),
                                    name="uniq_personal_workspace"),
        ]

    def __str__(self) -> str:
        return self.title


class WorkspaceMembership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = user_fk("+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="uniq_workspace_member"),
        ]
        indexes = [models.Index(fields=["user"], name="workspace_member_user_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} in workspace {self.workspace_id}"
