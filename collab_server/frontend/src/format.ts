// Small formatting helpers shared by the pages.

export function relativeTime (epochSeconds: number, now: number = Date.now() / 1000): string {
  const seconds = Math.max(0, Math.round(now - epochSeconds))
  if (seconds < 5) return 'just now'
  if (seconds < 60) return `${seconds} s ago`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`
  return new Date(epochSeconds * 1000).toLocaleString()
}

export function clockTime (epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toLocaleTimeString()
}

export function byteSize (bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

/** Creates an element with a class and text; never parses HTML. */
export function el<K extends keyof HTMLElementTagNameMap> (
  tag: K, className?: string, text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className !== undefined) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}
