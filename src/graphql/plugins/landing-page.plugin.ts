import type { ApolloServerPlugin, BaseContext, GraphQLServerListener } from '@apollo/server';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';

export interface LandingPageOptions {
  /** The operation Sandbox opens with. */
  document: string;
}

/** Apollo's own offline notice in the embedded Sandbox page, replaced by {@link offlineHelp}. */
const APOLLO_FALLBACK = /<p>Apollo Sandbox cannot be loaded; it appears that you might be offline\.<\/p>/;
const STUDIO_SANDBOX = 'https://studio.apollographql.com/sandbox/explorer';

/**
 * The development landing page: Apollo Sandbox embedded from Apollo's CDN (Apollo's local default page), plus what
 * to do when that CDN cannot be reached — the page would otherwise stay blank. The help is plain HTML under the
 * Sandbox frame (which covers it once loaded): a link to Sandbox on Studio with this endpoint filled in (Studio's
 * origin is allowed by the development CORS default) and a curl command. A small inline script puts the page's own
 * URL into both; without it they show `http://localhost:4000/graphql`.
 */
export function createLandingPagePlugin<TContext extends BaseContext>(options: LandingPageOptions): ApolloServerPlugin<TContext> {
  const apollo = ApolloServerPluginLandingPageLocalDefault({ embed: true, document: options.document, includeCookies: false });
  return {
    async serverWillStart(service) {
      const listener = (await apollo.serverWillStart?.(service)) as GraphQLServerListener | void;
      const render = listener?.renderLandingPage?.bind(listener);
      if (!render) return listener ?? undefined;
      return {
        ...listener,
        async renderLandingPage() {
          const page = await render();
          const html = typeof page.html === 'string' ? page.html : await page.html();
          const nonce = /nonce="?([A-Za-z0-9+/=_-]+)"?/.exec(html)?.[1] ?? '';
          return { ...page, html: html.replace(APOLLO_FALLBACK, offlineHelp(nonce)) };
        },
      };
    },
  };
}

function offlineHelp(nonce: string): string {
  const endpoint = 'http://localhost:4000/graphql';
  return `<div id="kbql-offline-help">
  <p>Apollo Sandbox did not load: it comes from Apollo's CDN, which this browser cannot reach (offline, or blocked).</p>
  <p>Try <a id="kbql-studio-link" href="${STUDIO_SANDBOX}?endpoint=${encodeURIComponent(endpoint)}">Sandbox on Apollo Studio</a> with
  this endpoint filled in (it needs internet access too), or any GraphQL client. From a terminal:</p>
  <pre id="kbql-curl">curl -s ${endpoint} -H 'content-type: application/json' -d '{"query":"{ collections { totalCount } }"}'</pre>
  <p>kbql's README, "A first query", walks through creating a collection, ingesting and asking.</p>
</div>
<script nonce="${nonce}">
  (function () {
    var endpoint = window.location.origin + window.location.pathname;
    document.getElementById('kbql-studio-link').href = '${STUDIO_SANDBOX}?endpoint=' + encodeURIComponent(endpoint);
    var curl = document.getElementById('kbql-curl');
    curl.textContent = curl.textContent.replace('${endpoint}', endpoint);
  })();
</script>`;
}
