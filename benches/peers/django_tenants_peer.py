"""django-tenants beside tenancy: the same server, the same DDL, the same N.

Provisioning (create a tenant: schema, three migrations, registry row), a
new migration over every tenant, and a migration run with nothing to do,
timed the way `cargo bench -p tenancy-migrate --bench fleet` times ours.
The three tenant migrations are `RunSQL` of exactly the SQL of the fleet
benchmark (M1, M2, M3 and the fan-out statement are copied from
`crates/tenancy-migrate/benches/fleet.rs`), so what differs is the
framework, not the DDL.

Run through `benches/peers/run.sh`, which installs django-tenants in a
virtualenv and runs this and our fleet benchmark one after the other.
Prints a Markdown table.
"""

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time

M1 = """
CREATE TABLE organizations (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_pkey PRIMARY KEY (id)
);
CREATE TABLE users (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    email text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_organization_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id)
);"""

M2 = """
CREATE TABLE projects (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    name text NOT NULL,
    archived boolean NOT NULL DEFAULT false,
    CONSTRAINT projects_pkey PRIMARY KEY (id),
    CONSTRAINT projects_organization_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id)
);
CREATE TABLE tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    assignee_id uuid,
    title text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    due date,
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_project_fkey FOREIGN KEY (project_id) REFERENCES projects (id),
    CONSTRAINT tasks_assignee_fkey FOREIGN KEY (assignee_id) REFERENCES users (id)
);
CREATE INDEX tasks_project_idx ON tasks (project_id);"""

M3 = """
CREATE TABLE comments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    task_id uuid NOT NULL,
    author_id uuid NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comments_pkey PRIMARY KEY (id),
    CONSTRAINT comments_task_fkey FOREIGN KEY (task_id) REFERENCES tasks (id),
    CONSTRAINT comments_author_fkey FOREIGN KEY (author_id) REFERENCES users (id)
);
CREATE INDEX comments_task_idx ON comments (task_id);
CREATE INDEX tasks_assignee_idx ON tasks (assignee_id);"""

FAN_OUT = (
    "ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0; "
    "CREATE INDEX tasks_priority_idx ON tasks (priority);"
)

CUSTOMERS_MODELS = """
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

class Client(TenantMixin):
    name = models.CharField(max_length=100)
    auto_create_schema = True

class Domain(DomainMixin):
    pass
"""

RUN_SQL_MIGRATION = """
from django.db import migrations

class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [migrations.RunSQL({sql!r})]
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text))


def tenant_migration(root, number, name, sql):
    dependencies = [] if number == 1 else [("work", previous_name(root))]
    write(
        os.path.join(root, "work", "migrations", f"{number:04d}_{name}.py"),
        RUN_SQL_MIGRATION.format(dependencies=dependencies, sql=sql),
    )


def previous_name(root):
    names = sorted(
        f[:-3]
        for f in os.listdir(os.path.join(root, "work", "migrations"))
        if f[0].isdigit() and f.endswith(".py")
    )
    return names[-1]


def project(root, database):
    """A Django project in `root`: a shared app with the tenant and domain
    models, a tenant app whose migrations are the fleet benchmark's SQL."""
    write(os.path.join(root, "customers", "__init__.py"), "")
    write(os.path.join(root, "customers", "models.py"), CUSTOMERS_MODELS)
    write(os.path.join(root, "customers", "migrations", "__init__.py"), "")
    write(os.path.join(root, "work", "__init__.py"), "")
    write(os.path.join(root, "work", "models.py"), "")
    write(os.path.join(root, "work", "migrations", "__init__.py"), "")
    tenant_migration(root, 1, "organizations_users", M1)
    tenant_migration(root, 2, "projects_tasks", M2)
    tenant_migration(root, 3, "comments", M3)
    sys.path.insert(0, root)
    from django.conf import settings

    shared = ["django_tenants", "customers", "django.contrib.contenttypes"]
    settings.configure(
        SECRET_KEY="peer-benchmark",
        USE_TZ=True,
        DATABASES={
            "default": {
                "ENGINE": "django_tenants.postgresql_backend",
                "NAME": database,
                "USER": os.environ.get("PGUSER", "postgres"),
                "HOST": os.environ.get("PGHOST", "127.0.0.1"),
                "PORT": os.environ.get("PGPORT", "5432"),
            }
        },
        DATABASE_ROUTERS=["django_tenants.routers.TenantSyncRouter"],
        SHARED_APPS=shared,
        TENANT_APPS=["work"],
        INSTALLED_APPS=shared + ["work"],
        TENANT_MODEL="customers.Client",
        TENANT_DOMAIN_MODEL="customers.Domain",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("makemigrations", "customers", verbosity=0)
    call_command("migrate_schemas", shared=True, verbosity=0)


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="an empty database to work in")
    parser.add_argument("--provision", type=int, default=50, help="tenants timed one by one")
    parser.add_argument("--tenants", type=int, default=200, help="tenants in the fleet runs")
    args = parser.parse_args()
    tenants = max(args.tenants, args.provision)

    root = tempfile.mkdtemp(prefix="peer-django-tenants-")
    project(root, args.database)
    from django.core.management import call_command
    from django.db import connection
    from customers.models import Client, Domain

    public = Client(schema_name="public", name="public")
    public.save()
    Domain.objects.create(domain="localhost", tenant=public, is_primary=True)

    create = []
    for n in range(tenants):
        started = time.perf_counter()
        client = Client(schema_name=f"tenant_{n:05d}", name=f"Tenant {n}")
        client.save(verbosity=0)  # creates the schema and runs migrate_schemas for it
        Domain.objects.create(domain=f"t{n}.example.com", tenant=client, is_primary=True)
        if n < args.provision:
            create.append(time.perf_counter() - started)
    connection.set_schema_to_public()

    started = time.perf_counter()
    call_command("migrate_schemas", tenant=True, verbosity=0)
    noop = time.perf_counter() - started

    tenant_migration(root, 4, "priority", FAN_OUT)
    import importlib

    importlib.invalidate_caches()
    started = time.perf_counter()
    call_command("migrate_schemas", tenant=True, verbosity=0)
    fan_out = time.perf_counter() - started

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'tasks' AND column_name = 'priority'"
        )
        migrated = cursor.fetchone()[0]
    if migrated != tenants:
        sys.exit(f"the fan-out migration reached {migrated} of {tenants} tenants")

    import django
    from importlib.metadata import version

    print(
        f"\ndjango-tenants {version('django-tenants')} on Django {django.get_version()}, "
        f"Python {sys.version.split()[0]}, {tenants} tenants\n"
    )
    print("| django-tenants | figure |")
    print("| --- | ---: |")
    print(f"| create a tenant (schema + 3 migrations + rows), p50 | {statistics.median(create) * 1000:.1f} ms |")
    print(f"| create a tenant, p99 | {quantile(create, 0.99) * 1000:.1f} ms |")
    print(f"| `migrate_schemas --tenant` with nothing to do, {tenants} tenants | {noop:.2f} s |")
    print(f"| `migrate_schemas --tenant`, one 2-statement migration over {tenants} tenants | {fan_out:.2f} s ({tenants / fan_out:.0f} tenants/s) |")


if __name__ == "__main__":
    main()
