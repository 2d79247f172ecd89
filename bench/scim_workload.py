"""SCIM provisioning at scale, as an identity provider drives it, timed per phase.

    python bench/scim_workload.py --url http://127.0.0.1:8000 --api-key OWNER_KEY [--users 1000]

With the Owner's API key it makes a workspace, maps a group to it and to the Manager role
(`/api/scim/settings`) and makes a SCIM token (`/api/scim/tokens`). Then, with that token only, on
the bare `/scim/v2/`: create N users (one POST each, as Okta and Entra ID do); list them all, 100
per page; look N/10 up by `userName eq` (the IdP's "does this person exist?"); create the group with
every user in one POST (each member gets the role and the workspace); remove half of them in one
PATCH; deactivate N/10 (`active: false`, Okta's form); delete the group and every user. Run it on a
scratch organization; it removes what it made.
"""

import argparse
import sys
import uuid

import requests
from sdk_workload import Timer  # the script directory is on sys.path

SCIM_JSON = "application/scim+json"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _checked(response: requests.Response, expected: int) -> dict:
    if response.status_code != expected:
        raise SystemExit(f"{response.request.method} {response.url}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else {}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    run = uuid.uuid4().hex[:6]
    group_name = f"bench-{run}-editors"

    admin = requests.Session()
    admin.headers["Authorization"] = f"Token {args.api_key}"
    workspace = _checked(admin.post(f"{base}/api/workspaces/", json={"title": f"SCIM bench {run}"}), 201)
    _checked(admin.post(f"{base}/api/scim/settings", json={
        "roles_groups": [["Manager", group_name]], "workspaces_groups": [[workspace["title"], group_name]],
    }), 201)
    token = _checked(admin.post(f"{base}/api/scim/tokens", json={"label": f"bench {run}"}), 201)

    scim = requests.Session()
    scim.headers.update({"Authorization": f"Bearer {token['token']}", "Content-Type": SCIM_JSON})
    root = f"{base}/scim/v2"
    timer = Timer()
    ids: list[str] = []
    try:
        with timer.phase(f"create {args.users} users (1 POST each)"):
            for n in range(args.users):
                email = f"scim-{run}-{n}@bench.test"
                user = _checked(scim.post(f"{root}/Users", json={
                    "schemas": [USER_URN], "userName": email, "name": {"givenName": "Bench", "familyName": str(n)},
                    "emails": [{"value": email, "type": "work", "primary": True}], "active": True,
                }), 201)
                ids.append(user["id"])
        with timer.phase("list every user, 100 per page"):
            listed, start = 0, 1
            while True:
                page = _checked(scim.get(f"{root}/Users", params={"startIndex": start, "count": 100}), 200)
                listed += len(page["Resources"])
                start += 100
                if start > page["totalResults"]:
                    break
        lookups = max(1, args.users // 10)
        with timer.phase(f"{lookups} lookups by userName eq"):
            for n in range(lookups):
                found = _checked(scim.get(f"{root}/Users",
                                          params={"filter": f'userName eq "scim-{run}-{n}@bench.test"'}), 200)
                assert found["totalResults"] == 1
        with timer.phase(f"create the group with {args.users} members (1 POST)"):
            group = _checked(scim.post(f"{root}/Groups", json={
                "schemas": [GROUP_URN], "displayName": group_name, "members": [{"value": pk} for pk in ids],
            }), 201)
        half = ids[: len(ids) // 2]
        with timer.phase(f"remove {len(half)} members (1 PATCH)"):
            _checked(scim.patch(f"{root}/Groups/{group['id']}", json={
                "schemas": [PATCH_URN],
                "Operations": [{"op": "remove", "path": "members", "value": [{"value": pk} for pk in half]}],
            }), 200)
        with timer.phase(f"deactivate {lookups} users (1 PATCH each)"):
            for pk in ids[:lookups]:
                _checked(scim.patch(f"{root}/Users/{pk}", json={
                    "schemas": [PATCH_URN], "Operations": [{"op": "replace", "value": {"active": False}}]}), 200)
        with timer.phase("delete the group"):
            _checked(scim.delete(f"{root}/Groups/{group['id']}"), 204)
        with timer.phase(f"delete {args.users} users (1 DELETE each)"):
            for pk in ids:
                _checked(scim.delete(f"{root}/Users/{pk}"), 204)
    finally:
        admin.delete(f"{base}/api/scim/tokens/{token['id']}")
        admin.post(f"{base}/api/scim/settings", json={"roles_groups": [], "workspaces_groups": []})
        admin.delete(f"{base}/api/workspaces/{workspace['id']}/")
    print(f"{'total':<40} {timer.total():8.2f} s  (users listed {listed})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
