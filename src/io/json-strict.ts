/**
 * A strict JSON (RFC 8259) parser for safetensors headers.
 *
 * `JSON.parse` is not enough to validate a header the way the reference (Rust, serde_json) does:
 * it silently keeps the last of duplicate keys, and it turns integers above 2^53 into nearby
 * doubles. This parser keeps every object's entries in order, rejects duplicate keys (naming the
 * key and where it sits), keeps each number's literal text so callers can insist on exact
 * non-negative integers, rejects lone UTF-16 surrogates in `\u` escapes (as serde_json does), and
 * caps nesting depth (serde_json's recursion limit is 128) so a hostile header cannot overflow the
 * stack.
 */

export type JsonValue =
  | { kind: 'object'; entries: [string, JsonValue][]; map: Map<string, JsonValue> }
  | { kind: 'array'; items: JsonValue[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; text: string; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' };

/** Thrown for malformed JSON; `position` is the character index in the parsed text. */
export class JsonSyntaxError extends Error {
  /** `path`: where in the document (e.g. `weight.shape[1]`); `topKey`: the top-level key it sits under, if any */
  constructor(
    message: string,
    readonly position: number,
    readonly path: string,
    readonly topKey: string | null = null,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

const MAX_DEPTH = 128;

export function parseJsonStrict(text: string): JsonValue {
  let i = 0;
  const n = text.length;
  let topKey: string | null = null;

  const fail = (msg: string, at = i, path = ''): never => {
    throw new JsonSyntaxError(`${msg} at position ${at}${path ? ` (in ${path})` : ''}`, at, path, topKey);
  };
  const skipWs = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const describe = (at: number) => (at >= n ? 'end of input' : `'${text[at]}'`);

  function parseString(path: string): string {
    // text[i] === '"'
    const start = i;
    i++;
    let out = '';
    let runStart = i;
    for (;;) {
      if (i >= n) fail('unterminated string', start, path);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(runStart, i);
        i++;
        return out;
      }
      if (c < 0x20) fail(`control character U+${c.toString(16).padStart(4, '0').toUpperCase()} inside a string`, i, path);
      if (c === 0x5c) {
        out += text.slice(runStart, i);
        const e = text[i + 1];
        switch (e) {
          case '"':
            out += '"';
            i += 2;
            break;
          case '\\':
            out += '\\';
            i += 2;
            break;
          case '/':
            out += '/';
            i += 2;
            break;
          case 'b':
            out += '\b';
            i += 2;
            break;
          case 'f':
            out += '\f';
            i += 2;
            break;
          case 'n':
            out += '\n';
            i += 2;
            break;
          case 'r':
            out += '\r';
            i += 2;
            break;
          case 't':
            out += '\t';
            i += 2;
            break;
          case 'u': {
            const cu = hex4(i + 2, path);
            i += 6;
            if (cu >= 0xd800 && cu <= 0xdbff) {
              if (text[i] !== '\\' || text[i + 1] !== 'u') fail('lone leading surrogate in \\u escape', i - 6, path);
              const lo = hex4(i + 2, path);
              if (lo < 0xdc00 || lo > 0xdfff) fail('lone leading surrogate in \\u escape', i - 6, path);
              i += 6;
              out += String.fromCharCode(cu, lo);
            } else if (cu >= 0xdc00 && cu <= 0xdfff) {
              fail('lone trailing surrogate in \\u escape', i - 6, path);
            } else {
              out += String.fromCharCode(cu);
            }
            break;
          }
          default:
            fail(`invalid escape '\\${e ?? ''}'`, i, path);
        }
        runStart = i;
        continue;
      }
      i++;
    }
  }

  function hex4(at: number, path: string): number {
    const h = text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('invalid \\u escape', at - 2, path);
    return parseInt(h, 16);
  }

  function parseNumber(path: string): JsonValue {
    const start = i;
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = i;
    const r = m.exec(text);
    if (!r || r[0] === '-' || r[0].length === 0) fail(`unexpected ${describe(i)}`, i, path);
    i = start + r![0].length;
    // "01" or "1." leave a digit/dot behind: the next token check reports them
    return { kind: 'number', text: r![0], value: Number(r![0]) };
  }

  function parseValue(path: string, depth: number): JsonValue {
    skipWs();
    if (i >= n) fail('unexpected end of input', i, path);
    const c = text[i];
    if (c === '{') {
      if (depth >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`, i, path);
      i++;
      const entries: [string, JsonValue][] = [];
      const map = new Map<string, JsonValue>();
      const keyPos = new Map<string, number>();
      skipWs();
      if (text[i] === '}') {
        i++;
        return { kind: 'object', entries, map };
      }
      for (;;) {
        skipWs();
        if (text[i] !== '"') fail(`expected a string key, found ${describe(i)}`, i, path);
        const at = i;
        const key = parseString(path);
        if (map.has(key)) {
          throw new JsonSyntaxError(
            `duplicate key ${JSON.stringify(key)}${path ? ` in ${path}` : ''} at position ${at} (first at position ${keyPos.get(key)})`,
            at,
            path,
            depth === 0 ? key : topKey,
          );
        }
        skipWs();
        if (text[i] !== ':') fail(`expected ':' after key ${JSON.stringify(key)}, found ${describe(i)}`, i, path);
        i++;
        if (depth === 0) topKey = key;
        const v = parseValue(path ? `${path}.${key}` : key, depth + 1);
        if (depth === 0) topKey = null;
        entries.push([key, v]);
        map.set(key, v);
        keyPos.set(key, at);
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { kind: 'object', entries, map };
        }
        fail(`expected ',' or '}', found ${describe(i)}`, i, path);
      }
    }
    if (c === '[') {
      if (depth >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`, i, path);
      i++;
      const items: JsonValue[] = [];
      skipWs();
      if (text[i] === ']') {
        i++;
        return { kind: 'array', items };
      }
      for (;;) {
        items.push(parseValue(`${path}[${items.length}]`, depth + 1));
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { kind: 'array', items };
        }
        fail(`expected ',' or ']', found ${describe(i)}`, i, path);
      }
    }
    if (c === '"') return { kind: 'string', value: parseString(path) };
    if (c === '-' || (c >= '0' && c <= '9')) return parseNumber(path);
    if (text.startsWith('true', i)) {
      i += 4;
      return { kind: 'bool', value: true };
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return { kind: 'bool', value: false };
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return { kind: 'null' };
    }
    return fail(`unexpected ${describe(i)}`, i, path);
  }

  const v = parseValue('', 0);
  skipWs();
  if (i < n) fail(`trailing characters after the JSON value (${describe(i)})`, i);
  return v;
}
