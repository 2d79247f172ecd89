"""Organization administration at scale, driven by the official SDK 2.x, timed per phase.

    python bench/admin_workload.py --url http://127.0.0.1:8000 --api-key OWNER_KEY [--members 1000]

Phases: create N members (one `users.create` call each, as an integration would); list every
member, 100 per page; filter members by role and search; create a workspace and add every member
in one bulk call; create a project and add every member in one bulk call; list its members 100 per
page; remove them all in one bulk call; delete the workspace's members, the workspace and the
project. The members stay in the organization (run against a scratch organization).
"""

import argparse
import sys
import uuid

from sdk_workload import Timer  # the script directory is on sys.path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--members", type=int, default=1000)
    args = parser.parse_args(argv)

    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=args.url, api_key=args.api_key, timeout=300)
    organization_id = client.users.whoami().active_organization
    run = uuid.uuid4().hex[:6]
    timer = Timer()
    user_ids: list[int] = []

    with timer.phase(f"create {args.members} members (1 call each)"):
        for n in range(args.members):
            user = client.users.create(username=f"bench-{run}-{n}@example.test",
                                       email=f"bench-{run}-{n}@example.test", first_name=f"Bench {n}")
            user_ids.append(user.id)
    with timer.phase("list every member, 100 per page"):
        listed = sum(1 for _ in client.organizations.members.list(organization_id, page_size=100))
    with timer.phase("filter members: role AN + search"):
        found = sum(1 for _ in client.organizations.members.list(organization_id, page_size=100,
                                                                 role="AN", search=f"bench-{run}-1"))
    workspace = client.workspaces.create(title=f"Bench {run}")
    with timer.phase(f"add {args.members} workspace members (1 call)"):
        client.workspaces.members.bulk.post(workspace.id, all_=False, included=user_ids)
    project = client.projects.create(title=f"Bench {run}", workspace=workspace.id)
    with timer.phase(f"add {args.members} project members (1 call)"):
        client.projects.members.bulk.post(project.id, all_=False, included=user_ids)
    with timer.phase("list project members, 100 per page"):
        project_members = sum(1 for _ in client.projects.members.paginated.list(project.id, page_size=100))
    with timer.phase(f"remove {args.members} project members (1 call)"):
        client.projects.members.bulk.delete(project.id, all_=False, included=user_ids)
    with timer.phase(f"remove {args.members} workspace members (1 call)"):
        client.workspaces.members.bulk.delete(workspace.id, all_=False, included=user_ids)
    client.projects.delete(project.id)
    client.workspaces.delete(workspace.id)

    print(f"{'total':<40} {timer.total():8.2f} s  (members listed {listed}, found {found}, "
          f"project members listed {project_members})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
