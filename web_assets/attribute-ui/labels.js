// The display's words: interface strings and the labels of purpose tags and attribute keys.
//
// Sources, most specific first: the deployer's window.TRANSLATIONS (config.js, as in
// the reference), the plugin's labels for the negotiated locale (its translator, with
// tags falling back to its default_locale), and the built-in strings.json. A tag
// without a label anywhere is shown as it is.

const DEFAULT_LOCALE = "nl"; // until the plugin names its default_locale

export const words = {
  builtin: {}, // strings.json: locale -> interface key -> text
  locale: DEFAULT_LOCALE, // the plugin's choice once it has answered
  defaultLocale: DEFAULT_LOCALE,
  server: {}, // the plugin's flat map for `locale`: interface strings and tag labels
};

/** An own string property of a plain object, else undefined (never "constructor" and friends). */
function own(map, key) {
  if (map !== null && typeof map === "object" && Object.hasOwn(map, key) && typeof map[key] === "string") {
    return map[key];
  }
  return undefined;
}

function primary(locale) {
  return locale.split("-")[0];
}

/** The deployer's window.TRANSLATIONS for `locale` (exact, else by language), if any. */
function overrides(locale) {
  const all = window.TRANSLATIONS;
  if (all === null || typeof all !== "object") {
    return undefined;
  }
  const names = Object.keys(all);
  const name = names.find((n) => n.toLowerCase() === locale) ?? names.find((n) => n.toLowerCase() === primary(locale));
  return name === undefined ? undefined : all[name];
}

/** An interface string: config.js, then the plugin's labels, then the built-in strings. */
export function text(key) {
  const { builtin, locale } = words;
  return own(overrides(locale), key) ?? own(words.server, key) ?? own(builtin[locale], key) ??
    own(builtin[primary(locale)], key) ?? own(builtin.en, key) ?? key;
}

/** A purpose tag's or attribute key's label; `given` is the label the plugin sent with it, if any. */
export function tagLabel(key, given) {
  return own(overrides(words.locale), key) ?? (typeof given === "string" ? given : undefined) ??
    own(words.server, key) ?? own(overrides(words.defaultLocale), key) ?? key;
}

/** Take the plugin's `{locale, default_locale, labels}` (from /display_labels or the stream). */
export function useServerLabels(message) {
  if (message === null || typeof message !== "object") {
    return;
  }
  if (typeof message.locale === "string") {
    words.locale = message.locale.toLowerCase();
  }
  if (typeof message.default_locale === "string") {
    words.defaultLocale = message.default_locale.toLowerCase();
  }
  if (message.labels !== null && typeof message.labels === "object") {
    words.server = message.labels;
  }
}

/** Load strings.json and guess the locale from the browser until the plugin answers. */
export async function loadBuiltinStrings() {
  try {
    const response = await fetch(new URL("strings.json", import.meta.url), { cache: "no-cache" });
    if (response.ok) {
      words.builtin = await response.json();
    }
  } catch {
    // Without them the page shows keys until the plugin's labels arrive.
  }
  const available = [
    ...Object.keys(words.builtin),
    ...Object.keys(window.TRANSLATIONS ?? {}).map((name) => name.toLowerCase()),
  ];
  if (Object.keys(words.server).length === 0) {
    words.locale = guessLocale(available);
  }
}

function guessLocale(available) {
  for (const tag of navigator.languages ?? [navigator.language]) {
    const lower = String(tag).toLowerCase();
    for (const candidate of [lower, primary(lower)]) {
      if (available.includes(candidate)) {
        return candidate;
      }
    }
  }
  return words.defaultLocale;
}
