// accessd called from Node.js with @grpc/grpc-js, the protos loaded from `proto/` at run
// time by @grpc/proto-loader (nothing generated): a workspace built, Check allowed and
// denied with what decided it, the team table, and a refusal with its status code.
// ACCESSD_ADDRESS is the host:port of a fresh `accessd serve`; `cargo test --test
// clients` starts one and runs this with `node --test`.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import path from "node:path";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../proto");
const WORKSPACE = "node-scenario";
const IOS = { type: "source", id: "ios-prod" };
// A bound on each call, which answers at once: a safety net, not a timing.
const BOUND_MS = 30_000;

const definition = protoLoader.loadSync(["accessd/v1/access.proto", "accessd/v1/admin.proto"], {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  enums: String,
  longs: String,
  defaults: true,
  oneofs: true,
});
const v1 = grpc.loadPackageDefinition(definition).accessd.v1;

const address = process.env.ACCESSD_ADDRESS;
assert.ok(address, "ACCESSD_ADDRESS is not set: run through `cargo test --test clients`");
const credentials = grpc.credentials.createInsecure();
const access = new v1.AccessService(address, credentials);
const admin = new v1.AdminService(address, credentials);

/** Calls `method` of `client` with `request`, as a promise. */
function call(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + BOUND_MS);
    client[method](request, { deadline }, (error, answer) => (error ? reject(error) : resolve(answer)));
  });
}

let revision;

before(async () => {
  await call(admin, "CreateWorkspace", { workspace_id: WORKSPACE, owner_user_id: "olivia" });
  await call(admin, "SetMembership", {
    workspace_id: WORKSPACE,
    user_id: "sam",
    membership: "MEMBERSHIP_MEMBER",
  });
  await call(admin, "RegisterResource", { workspace_id: WORKSPACE, resource: IOS });
  const granted = await call(admin, "Grant", {
    workspace_id: WORKSPACE,
    user_id: "sam",
    role: "source_admin",
    scope: { instance: IOS },
  });
  assert.equal(granted.changed, true);
  revision = granted.revision;
});

after(() => {
  access.close();
  admin.close();
});

test("a check allowed by a grant names the grant", async () => {
  const answer = await call(access, "Check", {
    workspace_id: WORKSPACE,
    user_id: "sam",
    permission: "source.update",
    resource: IOS,
    at_least_revision: revision,
  });
  assert.equal(answer.decision.allowed, true);
  assert.equal(answer.decision.basis, "grant");
  assert.deepEqual(answer.decision.grant, {
    user_id: "sam",
    role: "source_admin",
    scope: { instance: IOS, kind: "instance" },
  });
  assert.equal(answer.decision.explanation, "allowed: `sam` holds `source_admin` on source `ios-prod`");
  assert.ok(BigInt(answer.revision) >= BigInt(revision));
});

test("a denied check gives the reason", async () => {
  const answer = await call(access, "Check", {
    workspace_id: WORKSPACE,
    user_id: "sam",
    permission: "source.create",
    at_least_revision: revision,
  });
  assert.equal(answer.decision.allowed, false);
  assert.equal(answer.decision.basis, "denial");
  assert.equal(answer.decision.denial, "DENIAL_REASON_NO_COVERING_GRANT");
  assert.equal(answer.decision.explanation, "denied: no grant of `sam` covers `source.create` here");
});

test("the team table lists the owner and the member with the grant", async () => {
  const table = await call(access, "ListAccess", { workspace_id: WORKSPACE, at_least_revision: revision });
  assert.deepEqual(
    table.entries.map((entry) => [entry.user_id, entry.membership, entry.grants.map((g) => g.role)]),
    [
      ["olivia", "MEMBERSHIP_OWNER", []],
      ["sam", "MEMBERSHIP_MEMBER", ["source_admin"]],
    ],
  );
  assert.equal(table.next_page_token, "");
});

test("granting to a non-member is FAILED_PRECONDITION naming the field", async () => {
  await assert.rejects(
    call(admin, "Grant", {
      workspace_id: WORKSPACE,
      user_id: "bob",
      role: "source_read",
      scope: { all: {} },
    }),
    (error) => {
      assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(error.details, "`user_id`: user `bob` is not a member of the workspace");
      return true;
    },
  );
});

test("a malformed id is INVALID_ARGUMENT naming the field", async () => {
  await assert.rejects(
    call(access, "Check", { workspace_id: "node scenario", user_id: "sam", permission: "workspace.read" }),
    (error) => {
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(error.details, "`workspace_id`: must be printable ASCII without spaces, found ' ' at byte 4");
      return true;
    },
  );
});
