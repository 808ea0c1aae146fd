/** The message of a thrown value: an Error's message, anything else as a string. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** JSON.parse of `text`; a syntax error is thrown as `describe(the parser's message)`, the error its cause. */
export function parseJson(text: string, describe: (message: string) => string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(describe(errorMessage(e)), { cause: e });
  }
}
