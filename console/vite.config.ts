/// <reference types="vitest" />
// The console is served by the gateway under /ui/ (docs/ui.md). The build's
// output directory comes from VTN_UI_OUT (CMake points it into its build
// tree) or defaults to dist/. Hashed asset names let the gateway mark them
// immutable; nothing is inlined, so the gateway's Content-Security-Policy
// can stay 'self' only.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/ui/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: process.env.VTN_UI_OUT || 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2020',
  },
  test: {
    environment: 'jsdom',
    globals: true,
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
  },
});
