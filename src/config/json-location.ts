/**
 * Where a JSON text goes wrong, as an editor shows it (1-based line and column). JSON.parse gives
 * a position for some mistakes only (not for `[1,]`), so a small scanner finds it. No imports:
 * the inferred-targets plugin uses this at graph time.
 */
export interface JsonSyntaxProblem {
  line: number;
  column: number;
  reason: string;
}

/** The first syntax error of `text`, or undefined when it is valid JSON. */
export function findJsonSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  const scanner = new JsonScanner(text);
  try {
    scanner.document();
    return undefined;
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    const before = text.slice(0, error.offset).split('\n');
    return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1, reason: error.reason };
  }
}

/** `file:line:column: reason`, the form editors and terminals make clickable. */
export function describeJsonSyntaxProblem(file: string, problem: JsonSyntaxProblem): string {
  return `${file}:${problem.line}:${problem.column}: not valid JSON: ${problem.reason}`;
}

class JsonSyntaxError extends Error {
  readonly offset: number;
  readonly reason: string;
  constructor(offset: number, reason: string) {
    super(reason);
    this.offset = offset;
    this.reason = reason;
  }
}

const LITERALS = ['true', 'false', 'null'];
const NUMBER = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
// JSON forbids raw control characters inside strings, so the pattern must name them.
// eslint-disable-next-line no-control-regex
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

class JsonScanner {
  readonly text: string;
  #at = 0;
  constructor(text: string) {
    this.text = text;
  }

  document(): void {
    this.#value();
    this.#space();
    if (this.#at < this.text.length) this.#fail('unexpected text after the end of the JSON value');
  }

  #value(): void {
    this.#space();
    const ch = this.text[this.#at];
    if (ch === '{') return this.#members('}', () => this.#member());
    if (ch === '[') return this.#members(']', () => this.#value());
    if (ch === '"') return this.#string();
    if (this.#match(NUMBER)) return;
    const literal = LITERALS.find((word) => this.text.startsWith(word, this.#at));
    if (literal) {
      this.#at += literal.length;
      return;
    }
    this.#fail(ch === undefined ? 'the file ends too early' : `unexpected ${JSON.stringify(ch)}`);
  }

  /** `{...}` or `[...]`: items separated by commas, no trailing comma. */
  #members(close: string, item: () => void): void {
    this.#at++;
    this.#space();
    if (this.text[this.#at] === close) {
      this.#at++;
      return;
    }
    for (;;) {
      item();
      this.#space();
      const ch = this.text[this.#at];
      if (ch === close) {
        this.#at++;
        return;
      }
      if (ch !== ',') this.#fail(ch === undefined ? 'the file ends too early' : `expected "," or "${close}"`);
      const comma = this.#at++;
      this.#space();
      if (this.text[this.#at] === close) throw new JsonSyntaxError(comma, `a trailing comma before "${close}"`);
    }
  }

  #member(): void {
    this.#space();
    if (this.text[this.#at] !== '"') this.#fail('expected a double-quoted property name');
    this.#string();
    this.#space();
    if (this.text[this.#at] !== ':') this.#fail('expected ":" after the property name');
    this.#at++;
    this.#value();
  }

  #string(): void {
    if (!this.#match(STRING)) this.#fail('an unterminated string or a bad escape in it');
  }

  #match(pattern: RegExp): boolean {
    pattern.lastIndex = this.#at;
    if (!pattern.test(this.text)) return false;
    this.#at = pattern.lastIndex;
    return true;
  }

  #space(): void {
    while (this.#at < this.text.length && ' \t\n\r'.includes(this.text[this.#at] ?? '')) this.#at++;
  }

  #fail(reason: string): never {
    throw new JsonSyntaxError(this.#at, reason);
  }
}
