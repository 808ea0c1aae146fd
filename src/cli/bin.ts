/** Process entry of the runner (`npm run runner -- <command> ...`, under vite-node). */
import { main } from './main';

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
