/**
 * LangChain JS 0.x embedding through the gateway, run in its own process (it needs
 * @langchain/core 0.3, which cannot share the main import map). Prints the vectors as JSON.
 * Usage: deno run --config tests/clients/legacy/deno.json -A embed.ts BASE_URL KEY MODEL TEXT...
 */
import { OpenAIEmbeddings } from "@langchain/openai";

const [baseURL, apiKey, model, ...texts] = Deno.args;
const embeddings = new OpenAIEmbeddings({ model, apiKey, configuration: { baseURL } });
console.log(JSON.stringify(await embeddings.embedDocuments(texts)));
