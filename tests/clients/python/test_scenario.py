"""A workspace built and read through the generated stubs: writes and their revisions,
Check allowed and denied with what decided it, the team table, and both lookups."""

import unittest

from accessd_stubs import access_pb2, access_pb2_grpc, admin_pb2, admin_pb2_grpc
from server import channel

WORKSPACE = "py-scenario"
IOS = access_pb2.ResourceRef(type="source", id="ios-prod")
ANDROID = access_pb2.ResourceRef(type="source", id="android")
AMPLITUDE = access_pb2.ResourceRef(type="destination", id="amplitude")
SOURCE_ADMIN_ON_IOS = access_pb2.Grant(
    user_id="sam", role="source_admin", scope=access_pb2.Scope(instance=IOS)
)


class Scenario(unittest.TestCase):
    """Olivia owns the workspace; Sam is a member with `source_admin` on ios-prod."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.channel = channel()
        cls.access = access_pb2_grpc.AccessServiceStub(cls.channel)
        cls.admin = admin_pb2_grpc.AdminServiceStub(cls.channel)
        cls.writes = [
            cls.admin.CreateWorkspace(
                admin_pb2.CreateWorkspaceRequest(
                    workspace_id=WORKSPACE, owner_user_id="olivia", products=["protocols"]
                )
            ),
            cls.admin.SetMembership(
                admin_pb2.SetMembershipRequest(
                    workspace_id=WORKSPACE,
                    user_id="sam",
                    membership=access_pb2.MEMBERSHIP_MEMBER,
                )
            ),
            cls.admin.RegisterResource(
                admin_pb2.RegisterResourceRequest(workspace_id=WORKSPACE, resource=IOS)
            ),
            cls.admin.RegisterResource(
                admin_pb2.RegisterResourceRequest(workspace_id=WORKSPACE, resource=ANDROID)
            ),
            cls.admin.RegisterResource(
                admin_pb2.RegisterResourceRequest(
                    workspace_id=WORKSPACE, resource=AMPLITUDE, parent_id="ios-prod"
                )
            ),
            cls.admin.Grant(
                admin_pb2.GrantRequest(
                    workspace_id=WORKSPACE,
                    user_id="sam",
                    role="source_admin",
                    scope=access_pb2.Scope(instance=IOS),
                )
            ),
        ]
        cls.revision = cls.writes[-1].revision

    @classmethod
    def tearDownClass(cls) -> None:
        cls.channel.close()

    def check(self, user: str, permission: str, resource=None) -> access_pb2.CheckResponse:
        return self.access.Check(
            access_pb2.CheckRequest(
                workspace_id=WORKSPACE,
                user_id=user,
                permission=permission,
                resource=resource,
                at_least_revision=self.revision,
            )
        )

    def test_each_write_changes_at_a_new_revision(self) -> None:
        revisions = [write.revision for write in self.writes]
        self.assertTrue(all(write.changed for write in self.writes), self.writes)
        self.assertEqual(revisions, sorted(set(revisions)), "revisions must increase")

    def test_a_write_already_in_effect_changes_nothing(self) -> None:
        again = self.admin.Grant(
            admin_pb2.GrantRequest(
                workspace_id=WORKSPACE,
                user_id="sam",
                role="source_admin",
                scope=access_pb2.Scope(instance=IOS),
            )
        )
        self.assertFalse(again.changed)
        self.assertGreaterEqual(again.revision, self.revision)

    def test_check_allowed_names_the_grant(self) -> None:
        # A grant on the source covers its destinations.
        answer = self.check("sam", "destination.update", AMPLITUDE)
        self.assertTrue(answer.decision.allowed)
        self.assertEqual(answer.decision.WhichOneof("basis"), "grant")
        self.assertEqual(answer.decision.grant, SOURCE_ADMIN_ON_IOS)
        self.assertEqual(
            answer.decision.explanation,
            "allowed: `sam` holds `source_admin` on source `ios-prod`",
        )
        self.assertGreaterEqual(answer.revision, self.revision)

    def test_check_allowed_by_ownership(self) -> None:
        answer = self.check("olivia", "source.create")
        self.assertTrue(answer.decision.allowed)
        self.assertEqual(answer.decision.WhichOneof("basis"), "membership")
        self.assertEqual(answer.decision.membership, access_pb2.MEMBERSHIP_OWNER)

    def test_check_denied_gives_the_reason(self) -> None:
        answer = self.check("sam", "source.create")
        self.assertFalse(answer.decision.allowed)
        self.assertEqual(answer.decision.WhichOneof("basis"), "denial")
        self.assertEqual(answer.decision.denial, access_pb2.DENIAL_REASON_NO_COVERING_GRANT)
        self.assertEqual(
            answer.decision.explanation,
            "denied: no grant of `sam` covers `source.create` here",
        )

        other_source = self.check("sam", "source.update", ANDROID)
        self.assertEqual(
            other_source.decision.denial, access_pb2.DENIAL_REASON_NO_COVERING_GRANT
        )
        stranger = self.check("mallory", "source.read", IOS)
        self.assertEqual(stranger.decision.denial, access_pb2.DENIAL_REASON_NOT_A_MEMBER)
        unregistered = self.check(
            "sam", "source.read", access_pb2.ResourceRef(type="source", id="web")
        )
        self.assertEqual(
            unregistered.decision.denial, access_pb2.DENIAL_REASON_RESOURCE_NOT_REGISTERED
        )

    def test_list_access_is_the_team_table(self) -> None:
        table = self.access.ListAccess(
            access_pb2.ListAccessRequest(workspace_id=WORKSPACE, at_least_revision=self.revision)
        )
        self.assertEqual(
            list(table.entries),
            [
                access_pb2.AccessEntry(user_id="olivia", membership=access_pb2.MEMBERSHIP_OWNER),
                access_pb2.AccessEntry(
                    user_id="sam",
                    membership=access_pb2.MEMBERSHIP_MEMBER,
                    grants=[SOURCE_ADMIN_ON_IOS],
                ),
            ],
        )
        self.assertEqual(table.next_page_token, "")

    def test_lookup_resources_finds_the_granted_source(self) -> None:
        found = self.access.LookupResources(
            access_pb2.LookupResourcesRequest(
                workspace_id=WORKSPACE,
                user_id="sam",
                permission="source.update",
                at_least_revision=self.revision,
            )
        )
        self.assertEqual(list(found.resources), [IOS])
        self.assertEqual(found.next_page_token, "")

    def test_lookup_subjects_says_why_each_holds_it(self) -> None:
        found = self.access.LookupSubjects(
            access_pb2.LookupSubjectsRequest(
                workspace_id=WORKSPACE,
                permission="source.update",
                resource=IOS,
                at_least_revision=self.revision,
            )
        )
        self.assertEqual([s.user_id for s in found.subjects], ["olivia", "sam"])
        olivia, sam = found.subjects
        self.assertEqual(olivia.decision.membership, access_pb2.MEMBERSHIP_OWNER)
        self.assertEqual(sam.decision.grant, SOURCE_ADMIN_ON_IOS)
        self.assertTrue(all(s.decision.allowed for s in found.subjects))


if __name__ == "__main__":
    unittest.main()
