// Syntax highlighting chosen by the document name's extension.
import { javascript } from '@codemirror/lang-javascript'
import { markdown } from '@codemirror/lang-markdown'
import { python } from '@codemirror/lang-python'
import type { Extension } from '@codemirror/state'

interface Language {
  label: string
  load: () => Extension
}

const LANGUAGES: Record<string, Language> = {
  js: { label: 'JavaScript', load: () => javascript() },
  mjs: { label: 'JavaScript', load: () => javascript() },
  cjs: { label: 'JavaScript', load: () => javascript() },
  jsx: { label: 'JavaScript (JSX)', load: () => javascript({ jsx: true }) },
  ts: { label: 'TypeScript', load: () => javascript({ typescript: true }) },
  mts: { label: 'TypeScript', load: () => javascript({ typescript: true }) },
  cts: { label: 'TypeScript', load: () => javascript({ typescript: true }) },
  tsx: { label: 'TypeScript (TSX)', load: () => javascript({ typescript: true, jsx: true }) },
  json: { label: 'JSON', load: () => javascript() },
  py: { label: 'Python', load: () => python() },
  pyi: { label: 'Python', load: () => python() },
  md: { label: 'Markdown', load: () => markdown() },
  markdown: { label: 'Markdown', load: () => markdown() }
}

export function extensionOf (name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1)
  const dot = base.lastIndexOf('.')
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : ''
}

/** The language for a document name: its label and the CodeMirror extension (none for plain text). */
export function languageFor (name: string): { label: string, extension: Extension } {
  const language = LANGUAGES[extensionOf(name)]
  return language === undefined
    ? { label: 'Plain text', extension: [] }
    : { label: language.label, extension: language.load() }
}
