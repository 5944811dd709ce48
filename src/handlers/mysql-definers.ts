import { Transform, type TransformCallback } from 'node:stream';

/**
 * Views, triggers, routines and events in a MySQL/MariaDB dump carry `DEFINER=`user`@`host``.
 * Creating an object for another user takes SUPER (MariaDB: SET USER; MySQL 8: SET_USER_ID), which
 * an application's user rarely has, so its restore would fail. For such a user the dump's
 * definers are rewritten to CURRENT_USER as the dump streams through, and what was rewritten is
 * reported. Only the statement lines mariadb-dump/mysqldump write for these objects are touched,
 * never table data: a definer is recognised only at the start of a line, in the dump's own forms:
 *
 *   /*!50013 DEFINER=`root`@`%` SQL SECURITY DEFINER * /      (a view; its name is on the next line)
 *   /*!50003 CREATE* / /*!50017 DEFINER=`root`@`%`* / /*!50003 TRIGGER `t` …
 *   /*!50106 CREATE* / /*!50117 DEFINER=`root`@`%`* / /*!50106 EVENT `e` …
 *   CREATE DEFINER=`root`@`%` PROCEDURE `p`(…   /   … FUNCTION `f`(…
 */

export interface RewrittenDefiner {
  kind: 'view' | 'trigger' | 'event' | 'procedure' | 'function';
  name: string;
  /** The original definer, `root@localhost`. */
  definer: string;
}

const QUOTED = '`(?:[^`]|``)*`';
const DEFINER_LINE = new RegExp(`^(/\\*!\\d+ CREATE\\*/ /\\*!\\d+ |CREATE |/\\*!\\d+ )DEFINER=(${QUOTED})@(${QUOTED})`);
const OBJECT_AFTER = /^(?:\*\/ \/\*!\d+ |\s)(TRIGGER|EVENT|PROCEDURE|FUNCTION)\s+(`(?:[^`]|``)*`|[^\s(]+)/;
const VIEW_AFTER = /^ SQL SECURITY/;
const VIEW_NAME = /^\/\*!\d+ VIEW (`(?:[^`]|``)*`|\S+)/;
const MARKER = Buffer.from('DEFINER=');
const NEWLINE = 0x0a;

function unquote(identifier: string): string {
  return identifier.startsWith('`') ? identifier.slice(1, -1).replaceAll('``', '`') : identifier;
}

/**
 * Rewrites definers other than `self` (CURRENT_USER() as `user@host`) to CURRENT_USER and
 * calls `onRewrite` for each object.
 */
export class DefinerRewriter extends Transform {
  readonly #self: string;
  readonly #onRewrite: (rewritten: RewrittenDefiner) => void;
  #pending: Buffer[] = [];
  /** A view's definer was rewritten; its name comes on the next line. */
  #viewDefiner: string | undefined;

  constructor(self: string, onRewrite: (rewritten: RewrittenDefiner) => void) {
    super();
    this.#self = self;
    this.#onRewrite = onRewrite;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const last = chunk.lastIndexOf(NEWLINE);
    if (last < 0) {
      this.#pending.push(chunk);
      done();
      return;
    }
    const lines =
      this.#pending.length === 0
        ? chunk.subarray(0, last + 1)
        : Buffer.concat([...this.#pending, chunk.subarray(0, last + 1)]);
    this.#pending = last + 1 < chunk.length ? [chunk.subarray(last + 1)] : [];
    done(null, this.#rewrite(lines));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.#rewrite(Buffer.concat(this.#pending)));
  }

  /** Whole lines in, whole lines out; most batches hold no definer and pass as they are. */
  #rewrite(lines: Buffer): Buffer {
    if (this.#viewDefiner === undefined && !lines.includes(MARKER)) return lines;
    const out: Buffer[] = [];
    let start = 0;
    while (start < lines.length) {
      const end = lines.indexOf(NEWLINE, start);
      const stop = end < 0 ? lines.length : end + 1;
      out.push(this.#line(lines.subarray(start, stop)));
      start = stop;
    }
    return Buffer.concat(out);
  }

  #line(line: Buffer): Buffer {
    if (this.#viewDefiner !== undefined) {
      const name = VIEW_NAME.exec(line.toString('utf8'));
      if (name) this.#onRewrite({ kind: 'view', name: unquote(name[1]!), definer: this.#viewDefiner });
      this.#viewDefiner = undefined;
    }
    if (!line.subarray(0, 64).includes(MARKER)) return line;
    const text = line.toString('utf8');
    const match = DEFINER_LINE.exec(text);
    if (!match) return line;
    const definer = `${unquote(match[2]!)}@${unquote(match[3]!)}`;
    if (definer === this.#self) return line;
    const rest = text.slice(match[0].length);
    const object = OBJECT_AFTER.exec(rest);
    if (object) {
      this.#onRewrite({
        kind: object[1]!.toLowerCase() as RewrittenDefiner['kind'],
        name: unquote(object[2]!),
        definer,
      });
    } else if (VIEW_AFTER.test(rest)) {
      this.#viewDefiner = definer;
    } else {
      return line;
    }
    return Buffer.from(`${match[1]}DEFINER=CURRENT_USER${rest}`, 'utf8');
  }
}

export function describeRewrites(rewritten: readonly RewrittenDefiner[], self: string): string {
  const objects = rewritten.map((object) => `${object.kind} ${object.name} (was ${object.definer})`).join(', ');
  return `${rewritten.length} object${rewritten.length === 1 ? '' : 's'} defined by other users now ${rewritten.length === 1 ? 'has' : 'have'} the restoring user ${self} as definer (it has neither SUPER nor SET USER): ${objects}. Restore as a user with SET USER to keep the original definers.`;
}
