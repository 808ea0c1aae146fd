import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import { startUrlSync } from './store/settings';
import { startEngineWorker } from './store/engine-bridge';
import './ui/styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

// `?views-demo` shows every view with made-up data (for manual checks and e2e/views.spec.ts) instead of the app.
if (new URLSearchParams(window.location.search).has('views-demo')) {
  void import('./ui/views/ViewsDemo').then(({ ViewsDemo }) => {
    createRoot(root).render(
      <StrictMode>
        <ViewsDemo />
      </StrictMode>,
    );
  });
} else {
  startUrlSync();
  startEngineWorker();
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
