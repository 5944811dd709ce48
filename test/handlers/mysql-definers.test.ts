import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { DefinerRewriter, type RewrittenDefiner } from '../../src/handlers/mysql-definers.ts';

const DUMP = [
  "INSERT INTO `notes` VALUES (1,'CREATE DEFINER=`root`@`%` PROCEDURE `x`()'),(2,'/*!50013 DEFINER=`root`@`%` SQL SECURITY DEFINER */');",
  '/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.id = 1 ',
  '/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `e``1` ON SCHEDULE EVERY 1 DAY DO DELETE FROM t ',
  'CREATE DEFINER=`root`@`localhost` FUNCTION `f`() RETURNS int(11)',
  'CREATE DEFINER=`app`@`%` PROCEDURE `mine`()',
  '/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */',
  '/*!50001 VIEW `v` AS select 1 */;',
  '',
].join('\n');

/** Feeds the dump in chunks of `size` bytes, so lines are cut anywhere. */
async function rewrite(size: number): Promise<{ output: string; rewritten: RewrittenDefiner[] }> {
  const bytes = Buffer.from(DUMP);
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) chunks.push(bytes.subarray(start, start + size));
  const rewritten: RewrittenDefiner[] = [];
  const output = await text(
    Readable.from(chunks).pipe(new DefinerRewriter('app@%', (object) => rewritten.push(object))),
  );
  return { output, rewritten };
}

describe('DefinerRewriter', () => {
  it.each([1, 7, 64, 100_000])(
    'rewrites other users’ definers of objects only, never table data (chunks of %i bytes)',
    async (size) => {
      const { output, rewritten } = await rewrite(size);
      const lines = output.split('\n');
      expect(lines[0]).toBe(DUMP.split('\n')[0]);
      expect(lines.slice(1, 4).every((line) => line.includes('DEFINER=CURRENT_USER'))).toBe(true);
      expect(lines[4]).toBe('CREATE DEFINER=`app`@`%` PROCEDURE `mine`()');
      expect(lines[5]).toBe('/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */');
      expect(rewritten).toEqual([
        { kind: 'trigger', name: 'tr', definer: 'root@localhost' },
        { kind: 'event', name: 'e`1', definer: 'root@localhost' },
        { kind: 'function', name: 'f', definer: 'root@localhost' },
        { kind: 'view', name: 'v', definer: 'root@localhost' },
      ]);
    },
  );
});
