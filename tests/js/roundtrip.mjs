// The function_call cassette's tool round trip, as a Node app runs it with the openai npm package.
//
//   node roundtrip.mjs <ga|beta> <https base URL, e.g. https://127.0.0.1:8443/v1>
//
// The backend half mints an ephemeral key with the SDK's REST call (GA client_secrets, beta
// sessions); the client half opens OpenAIRealtimeWS with that key (the SDK always goes to wss://,
// so the CA must be trusted: NODE_EXTRA_CA_CERTS). Prints one JSON summary line and exits 0 when
// the round trip completed with no `error` event.
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { OpenAIRealtimeWS as BetaRealtimeWS } from 'openai/beta/realtime/ws';

const [dialect, baseURL] = process.argv.slice(2);
const INSTRUCTIONS = "You are an email assistant. Use the tools to answer questions about the user's inbox.";
const TOOL = {
  type: 'function',
  name: 'list_emails',
  description: "List the user's most recent emails, newest first.",
  parameters: {
    type: 'object',
    properties: { numEmails: { type: 'integer', description: 'How many emails to return.' } },
    required: ['numEmails'],
  },
};
const EMAILS = { total: 3, emails: [{ from: 'Ana Ruiz', subject: 'Lunch on Friday?', body: 'Are you free for lunch on Friday at noon?' }] };

// GA: the backend mints a key, the client connects with it (the SDK goes to wss:// whatever the
// baseURL's scheme; baseURL is the https://127.0.0.1:PORT/v1 that `mockrealtime serve --tls` prints).
async function connectGA(baseURL) {
  const backend = new OpenAI({ apiKey: 'sk-backend-test', baseURL });
  const secret = await backend.realtime.clientSecrets.create({ session: { type: 'realtime', model: 'gpt-realtime' } });
  return new OpenAIRealtimeWS({ model: 'gpt-realtime' }, new OpenAI({ apiKey: secret.value, baseURL }));
}

async function connectBeta(baseURL) {
  const backend = new OpenAI({ apiKey: 'sk-backend-test', baseURL });
  const session = await backend.beta.realtime.sessions.create({ model: 'gpt-4o-realtime-preview' });
  return new BetaRealtimeWS({ model: 'gpt-4o-realtime-preview' }, new OpenAI({ apiKey: session.client_secret.value, baseURL }));
}

const rt = dialect === 'ga' ? await connectGA(baseURL) : await connectBeta(baseURL);
const summary = { dialect, url: rt.url.toString(), events: [], errors: [], call: null, transcript: '' };
const finish = (code) => {
  console.log(JSON.stringify(summary));
  process.exit(code);
};
const timer = setTimeout(() => { summary.errors.push('timed out'); finish(1); }, 30000);

rt.on('error', (err) => summary.errors.push(err.message));
rt.socket.on('close', (code) => {
  clearTimeout(timer);
  summary.close = code;
  finish(summary.errors.length === 0 && summary.call && summary.responses === 2 ? 0 : 1);
});
rt.socket.on('open', () => {
  const session = dialect === 'ga'
    ? { type: 'realtime', instructions: INSTRUCTIONS, tools: [TOOL], tool_choice: 'auto' }
    : { instructions: INSTRUCTIONS, tools: [TOOL], tool_choice: 'auto' };
  rt.send({ type: 'session.update', session });
  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user',
    content: [{ type: 'input_text', text: 'How many emails do I have? Read me the latest one' }] } });
  rt.send({ type: 'response.create' });
});
summary.responses = 0;
rt.on('event', (event) => {
  summary.events.push(event.type);
  if (event.type.endsWith('audio_transcript.delta')) summary.transcript += event.delta;
  if (event.type !== 'response.done') return;
  summary.responses += 1;
  const call = event.response.output.find((item) => item.type === 'function_call');
  if (call) {
    // the tool runs here; its output goes back under the server's call_id
    summary.call = { name: call.name, call_id: call.call_id, arguments: JSON.parse(call.arguments) };
    rt.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: call.call_id, output: JSON.stringify(EMAILS) } });
    rt.send({ type: 'response.create' });
  } else {
    rt.close({ code: 1000, reason: 'done' });
  }
});
