import mysql from 'mysql2/promise';
import pg from 'pg';

/**
 * Fills a PostgreSQL database with about `megabytes` MB of dump text in one table (35 MB dumps
 * in well under a second here: big enough to kill a backup mid-stream, small enough for CI).
 */
export async function seedBulk(url: string, megabytes: number, table = 'bulk'): Promise<void> {
  const rows = Math.round((megabytes * 1024 * 1024) / 140);
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE ${table} AS SELECT g AS id, md5(g::text) || repeat('x', 100) AS payload FROM generate_series(1, ${rows}) g`,
    );
    await client.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
  } finally {
    await client.end();
  }
}

/** The same for MariaDB/MySQL, with MariaDB's sequence engine. */
export async function seedBulkMysql(url: string, megabytes: number, table = 'bulk'): Promise<void> {
  const rows = Math.round((megabytes * 1024 * 1024) / 140);
  const connection = await mysql.createConnection({ uri: url });
  try {
    await connection.query(
      `CREATE TABLE ${table} (id INT PRIMARY KEY, payload VARCHAR(200)) SELECT seq AS id, CONCAT(MD5(seq), REPEAT('x', 100)) AS payload FROM seq_1_to_${rows}`,
    );
  } finally {
    await connection.end();
  }
}

/** Rows and a content checksum of a table, to prove a database did not change. */
export async function tableFingerprint(url: string, table = 'bulk'): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; digest: string | null }>(
      `SELECT count(*) AS n, md5(string_agg(md5(t::text), '' ORDER BY id)) AS digest FROM ${table} t`,
    );
    return `${rows[0]?.n}:${rows[0]?.digest}`;
  } finally {
    await client.end();
  }
}

/** Sessions connected to a database, other than this one (a dead backup must not leave its pg_dump or snapshot behind). */
export async function sessionsOn(adminUrl: string, database: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [database],
    );
    return Number(rows[0]?.n);
  } finally {
    await client.end();
  }
}
