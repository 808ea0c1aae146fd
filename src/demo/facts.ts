/**
 * World knowledge for the demo backbone: facts about the UN member states from the
 * `world-countries` data package (ODbL): capital, continent, currency and main language, each as a
 * closed-book question with a short answer. Text is folded to lowercase ASCII so the demo's
 * word-level tokenizer stays small.
 */
import type { Country } from 'world-countries';
import countriesJson from 'world-countries/countries.json';

const countries = countriesJson as unknown as Country[];

export type Relation = 'capital' | 'continent' | 'currency' | 'language';
export const RELATIONS: readonly Relation[] = ['capital', 'continent', 'currency', 'language'];

export interface Fact {
  country: string;
  relation: Relation;
  question: string;
  answer: string;
  /** The same fact as a plain sentence (pretraining text). */
  statement: string;
}

/** Lowercase ASCII words: accents stripped, apostrophes and hyphens to spaces, other symbols dropped. */
export function fold(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’\-–]/g, ' ')
    .replace(/[^a-z0-9 ]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The Americas split as people name them. */
function continentOf(region: string, subregion: string): string {
  if (region === 'Americas') return subregion === 'South America' ? 'south america' : 'north america';
  return fold(region);
}

const QUESTION: Record<Relation, (country: string) => string> = {
  capital: (c) => `what is the capital of ${c} ?`,
  continent: (c) => `which continent is ${c} in ?`,
  currency: (c) => `what is the currency of ${c} ?`,
  language: (c) => `what language is spoken in ${c} ?`,
};

const STATEMENT: Record<Relation, (country: string, answer: string) => string> = {
  capital: (c, a) => `the capital of ${c} is ${a} .`,
  continent: (c, a) => `${c} is a country in ${a} .`,
  currency: (c, a) => `the currency of ${c} is the ${a} .`,
  language: (c, a) => `people in ${c} speak ${a} .`,
};

/** All facts, in a stable order (countries by name, relations in RELATIONS order). */
export function worldFacts(): Fact[] {
  const out: Fact[] = [];
  const members = countries.filter((c) => c.unMember && c.capital.length >= 1).sort((a, b) => (a.name.common < b.name.common ? -1 : 1));
  for (const c of members) {
    const country = fold(c.name.common);
    const currency = Object.values(c.currencies)[0]?.name;
    const language = Object.values(c.languages)[0];
    const values: Record<Relation, string | undefined> = {
      capital: fold(c.capital[0]),
      continent: continentOf(c.region, c.subregion),
      currency: currency ? fold(currency) : undefined,
      language: language ? fold(language) : undefined,
    };
    for (const relation of RELATIONS) {
      const answer = values[relation];
      if (!answer || !country) continue;
      out.push({ country, relation, question: QUESTION[relation](country), answer, statement: STATEMENT[relation](country, answer) });
    }
  }
  return out;
}
