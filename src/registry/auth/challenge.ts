/**
 * Parsing of `WWW-Authenticate` challenges (RFC 7235), such as
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
 */

export interface AuthChallenge {
  /** Scheme in lowercase, such as `bearer` or `basic`. */
  scheme: string;
  /** Parameters with lowercase names. */
  parameters: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/** Reads a quoted string starting at `start` (the opening quote); returns the value and the index after it. */
function readQuoted(text: string, start: number): [string, number] {
  let value = "";
  let index = start + 1;
  while (index < text.length && text[index] !== '"') {
    if (text[index] === "\\" && index + 1 < text.length) index += 1;
    value += text[index];
    index += 1;
  }
  return [value, index + 1];
}

function skipSpaces(text: string, index: number): number {
  while (index < text.length && (text[index] === " " || text[index] === "\t")) index += 1;
  return index;
}

/**
 * Parses every challenge in a `WWW-Authenticate` header value. Unparseable
 * trailing text is ignored, so a malformed header yields fewer challenges
 * rather than an error.
 */
export function parseChallenges(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let index = 0;

  while (index < header.length) {
    index = skipSpaces(header, index);
    if (header[index] === ",") {
      index += 1;
      continue;
    }
    const scheme = TOKEN.exec(header.slice(index))?.[0];
    if (scheme === undefined) break;
    index += scheme.length;
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), parameters: {} };
    challenges.push(challenge);

    // Parameters are `name=value` pairs separated by commas. A token that is
    // not followed by `=` starts the next challenge.
    for (;;) {
      let cursor = skipSpaces(header, index);
      if (header[cursor] === ",") cursor = skipSpaces(header, cursor + 1);
      const name = TOKEN.exec(header.slice(cursor))?.[0];
      if (name === undefined) break;
      const afterName = skipSpaces(header, cursor + name.length);
      if (header[afterName] !== "=") break;

      const valueStart = skipSpaces(header, afterName + 1);
      let value: string;
      if (header[valueStart] === '"') {
        [value, index] = readQuoted(header, valueStart);
      } else {
        value = TOKEN.exec(header.slice(valueStart))?.[0] ?? "";
        index = valueStart + value.length;
      }
      challenge.parameters[name.toLowerCase()] = value;
    }
  }
  return challenges;
}
