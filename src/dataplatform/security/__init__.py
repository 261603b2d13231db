"""Security: migrations, roles and row-level security, secrets rotation, audit log.

Modules (imported explicitly; nothing here does work at import):
`migrate` (forward-only SQL migrations), `rls` (department mapping, catalog audit), `roles`
(login roles), `secrets` (rotation policy and status), `rotation` (database password rotation),
`audit` (append-only audit.events), `cli` (``dataplatform db`` / ``dataplatform secrets``).
"""
