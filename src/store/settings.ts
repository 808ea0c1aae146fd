/**
 * Settings, synced to the URL: the page's query string is parsed once at startup through the typed
 * table (./settings-table.ts) and rewritten (history.replaceState) whenever a setting changes, so
 * the address bar is always a link that reproduces the run. Invalid URL values are kept in
 * `urlErrors` for the page to report; the defaults replace them. Written only by ./settings.ts (this
 * file): the form, presets, imports and the restore change it through setSetting and setSettings.
 */
import { create } from 'zustand';
import { defaultSettings, parseSettingsQuery, serializeSettingsQuery, type SettingError, type SettingKey, type Settings } from './settings-table';

export interface SettingsState {
  values: Settings;
  /** Problems found in the URL at startup (each replaced by its default). */
  urlErrors: SettingError[];
  /** True when the URL named at least one setting (then saved settings do not override it). */
  fromUrl: boolean;
}

function initial(): SettingsState {
  if (typeof location === 'undefined') return { values: defaultSettings(), urlErrors: [], fromUrl: false };
  const { settings, errors, present } = parseSettingsQuery(location.search);
  return { values: settings, urlErrors: errors, fromUrl: present.length > 0 || errors.length > 0 };
}

/** The settings store. Written only by ./settings.ts (setSetting, setSettings, dismissUrlErrors). */
export const useSettingsStore = create<SettingsState>(initial);

export function setSetting<K extends SettingKey>(key: K, value: Settings[K]): void {
  useSettingsStore.setState((s) => ({ values: { ...s.values, [key]: value } }));
}

export function setSettings(partial: Partial<Settings>): void {
  useSettingsStore.setState((s) => ({ values: { ...s.values, ...partial } }));
}

export function dismissUrlErrors(): void {
  useSettingsStore.setState({ urlErrors: [] });
}

/** The current settings as a shareable link. */
export function shareableUrl(): string {
  const q = serializeSettingsQuery(useSettingsStore.getState().values, location.search);
  return `${location.origin}${location.pathname}?${q}${location.hash}`;
}

let syncing = false;

/** Keeps the address bar in step with the settings (and writes it once now). */
export function startUrlSync(): void {
  if (syncing || typeof history === 'undefined') return;
  syncing = true;
  const write = (values: Settings) => {
    const q = serializeSettingsQuery(values, location.search);
    const url = `${location.pathname}?${q}${location.hash}`;
    if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(history.state, '', url);
  };
  write(useSettingsStore.getState().values);
  useSettingsStore.subscribe((s, prev) => {
    if (s.values !== prev.values) write(s.values);
  });
}
