// Copies the .sql files next to the compiled modules so dist/ runs on its own.
import { cpSync } from 'node:fs';
cpSync('src/sql', 'dist/src/sql', { recursive: true });
cpSync('src/demo/demo.sql', 'dist/src/demo/demo.sql');
// The web console's static files, served from dist by src/http/routes/console.ts.
cpSync('src/http/console', 'dist/src/http/console', {
  recursive: true,
  filter: (from) => !from.endsWith('.json'),
});
