import { FaberError } from '../output/errors.ts';
import type { SqlReader } from './migrations.ts';
import { quotePostgresIdentifier as quoteIdent, quotePostgresLiteral as quoteLiteral } from './postgresql-support.ts';
import { asText } from '../util/text.ts';

/**
 * What a PostgreSQL database carries besides its content: a dump (without --create) holds none
 * of it, so a restored copy gets them from the database it replaces. Without them the app role
 * loses its database: PostgreSQL 15's public schema belongs to the database owner.
 */
export interface DatabaseProperties {
  owner: string;
  /** aclexplode() of datacl; null when the database has the default privileges. */
  grants: Grant[] | null;
  /** `ALTER DATABASE … SET` (role null) and `ALTER ROLE … IN DATABASE … SET` settings, as `name=value`. */
  settings: Array<{ role: string | null; config: string[] }>;
  comment: string | null;
  connectionLimit: number;
  /** Encoding and locale: fixed at CREATE DATABASE, so they must already match. */
  locale: { encoding: string; collate: string; ctype: string; provider: string; providerLocale: string | null };
}

interface Grant {
  /** null: PUBLIC. */
  grantee: string | null;
  privilege: string;
  grantable: boolean;
}

/**
 * Settings whose value is a list (GUC_LIST_QUOTE): stored as `"$user", public`, set element by
 * element, as pg_dump does; quoting the whole text would make it one element.
 */
const LIST_SETTINGS = new Set([
  'search_path',
  'temp_tablespaces',
  'session_preload_libraries',
  'shared_preload_libraries',
  'local_preload_libraries',
  'unix_socket_directories',
]);

/** The properties of an existing database, or undefined when it does not exist. */
export async function readDatabaseProperties(reader: SqlReader, name: string): Promise<DatabaseProperties | undefined> {
  const [row] = await reader.query(
    `SELECT d.oid, pg_catalog.pg_get_userbyid(d.datdba) AS owner, d.datacl IS NULL AS default_acl, d.datconnlimit AS connection_limit,
            pg_catalog.shobj_description(d.oid, 'pg_database') AS comment, pg_catalog.pg_encoding_to_char(d.encoding) AS encoding,
            d.datcollate AS collate, d.datctype AS ctype, to_jsonb(d) AS d
     FROM pg_catalog.pg_database d WHERE d.datname = $1`,
    [name],
  );
  if (!row) return undefined;
  const raw = row.d as Record<string, string | null>;
  const grants = row.default_acl
    ? null
    : (
        await reader.query(
          `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege, a.is_grantable AS grantable
           FROM pg_catalog.pg_database d, LATERAL pg_catalog.aclexplode(d.datacl) a WHERE d.datname = $1 ORDER BY 1, 2`,
          [name],
        )
      ).map((grant) => ({
        grantee: grant.grantee === null ? null : asText(grant.grantee),
        privilege: String(grant.privilege),
        grantable: grant.grantable === true,
      }));
  const settings = await reader.query(
    `SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END AS role, s.setconfig AS config
     FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = $1 ORDER BY 1 NULLS FIRST`,
    [row.oid],
  );
  return {
    owner: String(row.owner),
    grants,
    settings: settings.map((setting) => ({
      role: setting.role === null ? null : asText(setting.role),
      config: (setting.config as string[] | null) ?? [],
    })),
    comment: row.comment === null ? null : asText(row.comment),
    connectionLimit: Number(row.connection_limit),
    locale: {
      encoding: String(row.encoding),
      collate: asText(row.collate ?? raw.datcollate),
      ctype: asText(row.ctype ?? raw.datctype),
      provider: String(raw.datlocprovider ?? 'c'),
      // PostgreSQL 15 named the provider's locale daticulocale, 17 renamed it datlocale.
      providerLocale: raw.datlocale ?? raw.daticulocale ?? null,
    },
  };
}

/** Statements that give `target` the owner, privileges, settings, comment and connection limit in `properties`. */
export function propertyStatements(properties: DatabaseProperties, target: string): string[] {
  const database = quoteIdent(target);
  const statements = [`ALTER DATABASE ${database} OWNER TO ${quoteIdent(properties.owner)}`];
  if (properties.grants) {
    // Start from no privileges at all (the owner's implicit ones included), then grant what the original had.
    statements.push(
      `REVOKE ALL ON DATABASE ${database} FROM PUBLIC`,
      `REVOKE ALL ON DATABASE ${database} FROM ${quoteIdent(properties.owner)}`,
    );
    for (const grant of properties.grants) {
      const grantee = grant.grantee === null ? 'PUBLIC' : quoteIdent(grant.grantee);
      statements.push(
        `GRANT ${grant.privilege} ON DATABASE ${database} TO ${grantee}${grant.grantable ? ' WITH GRANT OPTION' : ''}`,
      );
    }
  }
  for (const { role, config } of properties.settings) {
    const scope =
      role === null ? `ALTER DATABASE ${database}` : `ALTER ROLE ${quoteIdent(role)} IN DATABASE ${database}`;
    for (const item of config) {
      const at = item.indexOf('=');
      const name = item.slice(0, at);
      statements.push(`${scope} SET ${quoteIdent(name)} TO ${settingValue(name, item.slice(at + 1))}`);
    }
  }
  if (properties.comment !== null)
    statements.push(`COMMENT ON DATABASE ${database} IS ${quoteLiteral(properties.comment)}`);
  if (properties.connectionLimit !== -1)
    statements.push(`ALTER DATABASE ${database} CONNECTION LIMIT ${properties.connectionLimit}`);
  return statements;
}

function settingValue(name: string, value: string): string {
  if (!LIST_SETTINGS.has(name.toLowerCase())) return quoteLiteral(value);
  return splitSettingList(value).map(quoteLiteral).join(', ');
}

/** `"$user", public, "a ""b"""` → [`$user`, `public`, `a "b"`]. */
function splitSettingList(value: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (let index = 0; index < value.length; index += 1) {
    const character = value[index]!;
    if (quoted) {
      if (character === '"' && value[index + 1] === '"') {
        current += '"';
        index += 1;
      } else if (character === '"') quoted = false;
      else current += character;
    } else if (character === '"') quoted = true;
    else if (character === ',') {
      items.push(current.trim());
      current = '';
    } else current += character;
  }
  items.push(current.trim());
  return items.filter((item) => item !== '');
}

/** Encoding and locale are fixed when a database is created: a copy that differs cannot take the original's place. */
export function assertSameLocale(
  original: DatabaseProperties,
  copy: DatabaseProperties,
  names: { original: string; copy: string },
): void {
  const differences = (Object.keys(original.locale) as Array<keyof DatabaseProperties['locale']>)
    .filter((key) => original.locale[key] !== copy.locale[key])
    .map((key) => `${key} ${copy.locale[key] ?? 'none'} instead of ${original.locale[key] ?? 'none'}`);
  if (differences.length === 0) return;
  throw new FaberError(
    'RESTORE_FAILED',
    `The scratch database ${names.copy} could not be given the encoding and locale of ${names.original} (${differences.join(', ')}); nothing was loaded and the target is unchanged`,
    {
      result: { target_changed: false, differences },
      suggestions: [
        'Check that the server has the locale of the target database (locale -a), or restore into a database created with the locale you want (--targetConnectionStringEnv)',
      ],
    },
  );
}
