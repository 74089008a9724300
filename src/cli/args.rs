//! The flags of the client subcommands: what to ask a running server, where it is, and
//! how to print the answer. Parsing only; nothing here talks to a server.

use std::{fmt, path::PathBuf, str::FromStr};

use clap::{Args, Subcommand, ValueEnum};

use crate::connect::ClientTls;

/// The subcommands that are clients of a running server.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Decide one permission for one user: allowed or denied, why, and at which revision.
    Check(CheckArgs),
    /// Grant a role to a member, on one resource instance or on all instances.
    Grant(GrantArgs),
    /// Revoke a grant (the same role and scope it was granted with).
    Revoke(GrantArgs),
    /// Add a user to a workspace, change their membership, or remove them.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Register or delete resource instances.
    #[command(subcommand)]
    Resources(ResourcesCommand),
    /// Create or delete workspaces, or change their products.
    #[command(subcommand)]
    Workspaces(WorkspacesCommand),
    /// Print the team table: every user with their membership and grants.
    List(ListArgs),
    /// Which instances a user holds a permission on, or who holds a permission on one.
    #[command(subcommand)]
    Lookup(LookupCommand),
    /// Migrate legacy role assignments from a CSV file.
    MigrateLegacy(MigrateArgs),
    /// Write every user of a workspace with their membership and roles, as CSV or JSON;
    /// or the whole database (or one workspace) as a records file `import` reads.
    Export(ExportArgs),
    /// Load a records file (JSON lines, as `export --format records` writes) in bulk.
    Import(ImportArgs),
    /// Where the server stands: a leader's revision, or a follower's state and how far
    /// behind its leader it is.
    Status(AdminOptions),
    /// The audit trail: every change the change log retains, with the caller that made
    /// it and the acting user it named, oldest first.
    Audit(AuditArgs),
    /// Write the whole database, read at one revision while writes go on, to a backup
    /// file that `accessd restore` loads.
    Backup(BackupArgs),
}

/// Where the server is.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's address (`http://HOST:PORT`, or `https://HOST:PORT` for a server
    /// with TLS; `HOST:PORT` alone is `http://`), or `unix:PATH` for its Unix socket.
    #[arg(long, env = "ACCESSD_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// With an `https://` address: the CA certificates (PEM) that signed the server's
    /// certificate; the system's roots without it.
    #[arg(long, env = "ACCESSD_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// With an `https://` address: a client certificate (PEM) for a server that
    /// requires mTLS; with `--tls-key`.
    #[arg(
        long,
        env = "ACCESSD_CLIENT_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(
        long,
        env = "ACCESSD_CLIENT_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

impl ServerArgs {
    /// The TLS files given.
    pub fn tls(&self) -> ClientTls {
        ClientTls {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        }
    }
}

/// The admin token, for AdminService calls.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Sent as `authorization: Bearer TOKEN`: a caller's token (a server with
    /// `--callers`), or the server's `--admin-token`.
    #[arg(long, env = "ACCESSD_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// How an answer is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns with a header row, for people.
    Table,
    /// JSON, for scripts.
    Json,
}

/// The options of a command that calls AccessService.
#[derive(Debug, Clone, Args)]
pub struct ReadOptions {
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The caller's token, for a server with a callers file.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Answer at this revision or a later one (the revision a write printed): a
    /// follower that has not applied it yet waits for it, for at most 5 seconds.
    #[arg(long, value_name = "REVISION", default_value_t = 0)]
    pub at_least_revision: u64,
    /// How to print the answer.
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// The options of a command that calls AdminService.
#[derive(Debug, Clone, Args)]
pub struct AdminOptions {
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The admin token.
    #[command(flatten)]
    pub token: TokenArgs,
    /// How to print the answer.
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// The `--page-size` flag of the commands that follow pages to the end.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Rows asked for per call; every page is fetched whatever the size.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
}

/// A resource instance on the command line: `TYPE:ID`, such as `source:ios-prod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceArg {
    /// The resource type, such as `source`.
    pub type_name: String,
    /// The instance id, which may itself contain `:`.
    pub id: String,
}

impl FromStr for ResourceArg {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.split_once(':') {
            Some((type_name, id)) if !type_name.is_empty() && !id.is_empty() => Ok(Self {
                type_name: type_name.to_owned(),
                id: id.to_owned(),
            }),
            _ => Err(format!(
                "expected `TYPE:ID` such as `source:ios-prod`, got `{raw}`"
            )),
        }
    }
}

impl fmt::Display for ResourceArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.type_name, self.id)
    }
}

/// Settings of `accessd check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The user.
    #[arg(long)]
    pub user: String,
    /// The permission, such as `source.update`.
    #[arg(long)]
    pub permission: String,
    /// The instance the permission applies to; omitted for permissions that name the
    /// workspace (`workspace.*`, `personas.*`, `*.create` except `destination.create`).
    #[arg(long, value_name = "TYPE:ID")]
    pub resource: Option<ResourceArg>,
    /// Exit with status 3 when the check is denied (by default: 0 either way).
    #[arg(long)]
    pub exit_code: bool,
    /// Where the server is, how to print the answer.
    #[command(flatten)]
    pub options: ReadOptions,
}

/// The scope of a grant: exactly one of `--all` and `--resource`.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// Every current and future instance of the role's resource type.
    #[arg(long)]
    pub all: bool,
    /// One resource instance.
    #[arg(long, value_name = "TYPE:ID")]
    pub resource: Option<ResourceArg>,
}

/// Settings of `accessd grant` and `accessd revoke`.
#[derive(Debug, Clone, Args)]
pub struct GrantArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The member holding the grant.
    #[arg(long)]
    pub user: String,
    /// The role, such as `source_admin` (`accessd roles` lists them).
    #[arg(long)]
    pub role: String,
    /// The scope.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// The user making the change, refused unless they are an owner.
    #[arg(long)]
    pub actor: Option<String>,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// `accessd members ...`.
#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Add a user to the workspace, as a member (or `--owner`).
    Add(MemberArgs),
    /// Set a user's membership: member, or `--owner`. Demoting the last owner is refused.
    Set(MemberArgs),
    /// Remove a user and all their grants. Removing the last owner is refused.
    Remove(RemoveMemberArgs),
}

/// Settings of `accessd members add` and `accessd members set`.
#[derive(Debug, Clone, Args)]
pub struct MemberArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The user.
    #[arg(long)]
    pub user: String,
    /// Make the user an owner rather than a member.
    #[arg(long)]
    pub owner: bool,
    /// The user making the change, refused unless they are an owner.
    #[arg(long)]
    pub actor: Option<String>,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// Settings of `accessd members remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveMemberArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The user to remove.
    #[arg(long)]
    pub user: String,
    /// The user making the change, refused unless they are an owner.
    #[arg(long)]
    pub actor: Option<String>,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// `accessd resources ...`.
#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// Register a resource instance (a destination names its source with `--parent`).
    Register(RegisterArgs),
    /// Delete a resource instance, the grants scoped to it and, for a source, its
    /// destinations.
    Delete(DeleteResourceArgs),
}

/// Settings of `accessd resources register`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The instance.
    #[arg(long, value_name = "TYPE:ID")]
    pub resource: ResourceArg,
    /// The id of the parent instance, for a type with a parent (a destination's source).
    #[arg(long, value_name = "ID")]
    pub parent: Option<String>,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// Settings of `accessd resources delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteResourceArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The instance.
    #[arg(long, value_name = "TYPE:ID")]
    pub resource: ResourceArg,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// `accessd workspaces ...`.
#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Create a workspace with its first owner and its add-on products.
    Create(CreateWorkspaceArgs),
    /// Replace a workspace's add-on products; grants of a disabled product are kept.
    SetProducts(SetProductsArgs),
    /// Delete a workspace and everything in it.
    Delete(DeleteWorkspaceArgs),
}

/// Settings of `accessd workspaces create`.
#[derive(Debug, Clone, Args)]
pub struct CreateWorkspaceArgs {
    /// The new workspace's id.
    #[arg(long)]
    pub workspace: String,
    /// Its first owner.
    #[arg(long)]
    pub owner: String,
    /// Its add-on products, comma-separated, such as `protocols,personas`; `''` (or
    /// `connections`, always enabled) for none.
    #[arg(long, required = true, value_delimiter = ',')]
    pub products: Vec<String>,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// Settings of `accessd workspaces set-products`.
#[derive(Debug, Clone, Args)]
pub struct SetProductsArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The complete set of add-on products from now on, comma-separated; `''` for none.
    #[arg(long, required = true, value_delimiter = ',')]
    pub products: Vec<String>,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// Settings of `accessd workspaces delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteWorkspaceArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// Settings of `accessd list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// Only this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only users holding this role, and only their grants of it.
    #[arg(long)]
    pub role: Option<String>,
    /// Only users with access to this instance, and only the grants that cover it.
    #[arg(long, value_name = "TYPE:ID")]
    pub resource: Option<ResourceArg>,
    /// The page size.
    #[command(flatten)]
    pub page: PageArgs,
    /// Where the server is, how to print the answer.
    #[command(flatten)]
    pub options: ReadOptions,
}

/// `accessd lookup ...`.
#[derive(Debug, Subcommand)]
pub enum LookupCommand {
    /// The instances on which a user holds a permission, such as every source they may
    /// update.
    Resources(LookupResourcesArgs),
    /// The users who hold a permission on one instance (or on the workspace), and why.
    Subjects(LookupSubjectsArgs),
}

/// Settings of `accessd lookup resources`.
#[derive(Debug, Clone, Args)]
pub struct LookupResourcesArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The user.
    #[arg(long)]
    pub user: String,
    /// A permission that names an instance, such as `source.update`.
    #[arg(long)]
    pub permission: String,
    /// The page size.
    #[command(flatten)]
    pub page: PageArgs,
    /// Where the server is, how to print the answer.
    #[command(flatten)]
    pub options: ReadOptions,
}

/// Settings of `accessd lookup subjects`.
#[derive(Debug, Clone, Args)]
pub struct LookupSubjectsArgs {
    /// The workspace.
    #[arg(long)]
    pub workspace: String,
    /// The permission.
    #[arg(long)]
    pub permission: String,
    /// The instance, omitted for permissions that name the workspace.
    #[arg(long, value_name = "TYPE:ID")]
    pub resource: Option<ResourceArg>,
    /// The page size.
    #[command(flatten)]
    pub page: PageArgs,
    /// Where the server is, how to print the answer.
    #[command(flatten)]
    pub options: ReadOptions,
}

/// Settings of `accessd migrate-legacy`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// A CSV file with the header `workspace_id,user_id,legacy_role,source_id`;
    /// `legacy_role` is `workspace_owner`, `workspace_read_only` or `source_collaborator`.
    #[arg(long)]
    pub file: PathBuf,
    /// Report what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the server is, the token, how to print the result.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// The file formats of `accessd export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// `user_id,membership,role,scope_type,scope_id`, one row per grant.
    Csv,
    /// An array of `{user_id, membership, grants: [{role, scope}]}`.
    Json,
    /// JSON lines of workspace, resource, member and grant records: what `import` reads.
    /// Without `--workspace`, the whole database.
    Records,
}

/// Settings of `accessd export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The workspace; required except with `--format records`.
    #[arg(long)]
    pub workspace: Option<String>,
    /// The file format: `csv` (the default with `--workspace`) or `records` (without).
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The page size.
    #[command(flatten)]
    pub page: PageArgs,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The token: a caller's, or the admin token (`--format records` reads through
    /// AdminService).
    #[command(flatten)]
    pub token: TokenArgs,
}

/// Settings of `accessd import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The records file: one JSON record per line.
    pub file: PathBuf,
    /// When the connection breaks or the server is unavailable, reconnect and resume
    /// from the last batch the server acknowledged as durable, until the server has
    /// acknowledged nothing for this long (`30s`, `5m`); 0 never resumes.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = humantime::parse_duration,
        default_value = "1m"
    )]
    pub retry_for: std::time::Duration,
    /// Where the server is, the token, how to print the report.
    #[command(flatten)]
    pub options: AdminOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_splits_at_its_first_colon() {
        let parsed: ResourceArg = "source:ios:prod".parse().unwrap();
        assert_eq!(parsed.type_name, "source");
        assert_eq!(parsed.id, "ios:prod");
    }

    #[test]
    fn a_resource_without_a_type_or_an_id_is_refused() {
        for raw in ["source", ":ios", "source:", ""] {
            assert!(raw.parse::<ResourceArg>().is_err(), "{raw}");
        }
    }
}

/// Settings of `accessd audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only changes to this workspace.
    #[arg(long)]
    pub workspace: Option<String>,
    /// Only changes to this user's membership or grants, or naming them as actor.
    #[arg(long)]
    pub user: Option<String>,
    /// Only changes made by this caller.
    #[arg(long)]
    pub caller: Option<String>,
    /// Only changes made at or after this time (milliseconds since the Unix epoch).
    #[arg(long, value_name = "MILLIS")]
    pub since_unix_ms: Option<u64>,
    /// Only changes made before this time (milliseconds since the Unix epoch).
    #[arg(long, value_name = "MILLIS")]
    pub until_unix_ms: Option<u64>,
    /// At most this many entries.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// Where the server is, the admin credentials, how to print.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// Settings of `accessd backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The backup file to write (`-`: standard output). It appears only once whole.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where the server is, the admin token, how to print the summary.
    #[command(flatten)]
    pub options: AdminOptions,
}

/// Settings of `accessd restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup file (`accessd backup --out FILE`).
    pub file: PathBuf,
    /// The data directory to restore into: new, or empty.
    #[arg(long, env = "ACCESSD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The role catalog the restored server will run with (`serve --roles`); the
    /// built-in one without it.
    #[arg(long, env = "ACCESSD_ROLES", value_name = "FILE")]
    pub roles: Option<PathBuf>,
    /// How to print the summary.
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Settings of `accessd verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The data directory to check; no server may be running on it.
    #[arg(long, env = "ACCESSD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The role catalog the server runs with (`serve --roles`), which says which stored
    /// names are known; the built-in one without it.
    #[arg(long, env = "ACCESSD_ROLES", value_name = "FILE")]
    pub roles: Option<PathBuf>,
    /// How to print the report.
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}
