// Browser APIs that @grafana/ui touches at import time and jsdom lacks. Loaded before
// every test file (jest `setupFiles`); does nothing in the node environment.
if (typeof window !== 'undefined') {
  window.matchMedia ??= ((query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => {},
    removeListener: () => {},
    addEventListener: () => {},
    removeEventListener: () => {},
    dispatchEvent: () => false,
  })) as typeof window.matchMedia;
  // Combobox measures option text on a canvas; a fixed width per character is enough here.
  HTMLCanvasElement.prototype.getContext = function getContext() {
    return { font: '', measureText: (text: string) => ({ width: text.length * 7 }) };
  } as any;
  (globalThis as any).ResizeObserver ??= class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}
