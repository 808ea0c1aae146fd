import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import { startUrlSync } from './store/settings';
import { startEngineWorker } from './store/engine-bridge';
import './ui/styles.css';
import { errorMessage } from './util/errors';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

// `?views-demo` shows every view with made-up data (for manual checks and e2e/views.spec.ts) instead of
// the app. Only in the dev server and in builds made with VITE_VIEWS_DEMO=true (the e2e tests' build):
// in a shipped build the condition is the constant false and the page and its data are not bundled.
const viewsDemoBuilt = import.meta.env.DEV || import.meta.env.VITE_VIEWS_DEMO === 'true';
if (viewsDemoBuilt && new URLSearchParams(window.location.search).has('views-demo')) {
  import('./ui/views/ViewsDemo').then(
    ({ ViewsDemo }) => {
      createRoot(root).render(
        <StrictMode>
          <ViewsDemo />
        </StrictMode>,
      );
    },
    (e: unknown) => {
      root.textContent = `The views demo could not be loaded: ${errorMessage(e)}`;
    },
  );
} else {
  startUrlSync();
  startEngineWorker();
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
