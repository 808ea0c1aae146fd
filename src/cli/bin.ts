/** Process entry of the runner (`npm run runner -- <command> ...`, under vite-node). */
import { main } from './main';
import { errorMessage } from '../util/errors';

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`error: ${errorMessage(e)}`);
    process.exit(1);
  },
);
