import * as Y from 'yjs';
import { Manifest } from '../../src/manifest';

/** A manifest holding `paths`, asked for the children of `dir`. */
export function children(paths: string[], dir: string): [string, boolean][] {
  const manifest = new Manifest(new Y.Doc());
  for (const path of paths) manifest.files.set(path, { eol: 'lf' });
  return manifest.children(dir);
}
