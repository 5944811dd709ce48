import type { DatabaseHandler, DatabaseTarget } from '../handlers/handler.ts';
import type { Reporter } from '../output/reporter.ts';

/**
 * Drops a scratch database (or file) once a restore or drill is done with it. Failing to drop it does not
 * fail the operation: the user is warned to drop it by hand, and the warning is returned for the result.
 */
export async function dropScratch(
  handler: DatabaseHandler,
  scratch: DatabaseTarget,
  reporter: Reporter,
  redact: (text: string) => string = (text) => text,
): Promise<string | undefined> {
  try {
    await handler.dropDatabase(scratch);
    return undefined;
  } catch (error) {
    const warning = `Could not drop the scratch database ${scratch.display}: ${redact((error as Error).message)}; drop it by hand`;
    reporter.warn(warning);
    return warning;
  }
}
