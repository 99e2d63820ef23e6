// The browser chat app: the XMPP client layer (js/xmpp/) and the interface (js/ui/).
import { XmppClient } from './xmpp/client.js';
import { App } from './ui/views.js';

const client = new XmppClient();
const app = new App(client);
app.start();
