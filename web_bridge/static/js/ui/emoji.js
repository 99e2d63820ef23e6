// The emoji picker: a few hundred common emoji in categories, inserted as plain Unicode text.
import { h, clear } from './dom.js';
import { t } from './i18n.js';

const CATEGORIES = [
  ['smileys', '😀 😃 😄 😁 😆 😅 🤣 😂 🙂 🙃 😉 😊 😇 🥰 😍 🤩 😘 😗 😚 😙 😋 😛 😜 🤪 😝 🤑 '
    + '🤗 🤭 🤫 🤔 🤐 🤨 😐 😑 😶 😏 😒 🙄 😬 😮‍💨 🤥 😌 😔 😪 🤤 😴 😷 🤒 🤕 🤢 🤮 🤧 🥵 🥶 '
    + '🥴 😵 🤯 🤠 🥳 😎 🤓 🧐 😕 😟 🙁 😮 😯 😲 😳 🥺 😦 😧 😨 😰 😥 😢 😭 😱 😖 😣 😞 😓 😩 '
    + '😫 🥱 😤 😡 😠 🤬 😈 👿 💀 💩 🤡 👻 👽 🤖 😺 😸 😹 😻 😼 😽 🙀 😿 😾'],
  ['people', '👋 🤚 🖐️ ✋ 🖖 👌 🤌 🤏 ✌️ 🤞 🤟 🤘 🤙 👈 👉 👆 👇 ☝️ 👍 👎 ✊ 👊 🤛 🤜 👏 🙌 '
    + '👐 🤲 🤝 🙏 ✍️ 💅 💪 👀 👁️ 👅 👄 🧠 👶 🧒 👦 👧 🧑 👨 👩 🧓 👴 👵 🙋 🙆 🙅 🤷 🤦 🙇 💁 '
    + '🧑‍💻 🧑‍🍳 🧑‍🎓 🧑‍🚀 🦸 🧙 🧚 🧜 💃 🕺 🏃 🚶 👫 👭 👬 💏 💑 👪 🤰'],
  ['animals', '🐶 🐱 🐭 🐹 🐰 🦊 🐻 🐼 🐨 🐯 🦁 🐮 🐷 🐸 🐵 🙈 🙉 🙊 🐔 🐧 🐦 🐤 🦆 🦅 🦉 '
    + '🐺 🐗 🐴 🦄 🐝 🐛 🦋 🐌 🐞 🐢 🐍 🐙 🦀 🐠 🐟 🐬 🐳 🦈 🐊 🐘 🦒 🐪 🐄 🐎 🐑 🐈 🐕 🌵 🌲 '
    + '🌳 🌴 🌱 🌿 🍀 🍁 🍂 🌷 🌹 🌺 🌸 🌼 🌻 🌞 🌝 🌛 ⭐ 🌟 ✨ ⚡ 🔥 🌈 ☀️ ⛅ ☁️ 🌧️ ⛄ ❄️ 💧 🌊'],
  ['food', '🍏 🍎 🍐 🍊 🍋 🍌 🍉 🍇 🍓 🫐 🍈 🍒 🍑 🥭 🍍 🥥 🥝 🍅 🍆 🥑 🥦 🥬 🥒 🌶️ 🌽 '
    + '🥕 🧄 🧅 🥔 🍠 🥐 🍞 🥖 🥨 🧀 🥚 🍳 🥞 🥓 🍗 🍖 🌭 🍔 🍟 🍕 🥪 🌮 🌯 🥗 🍝 🍜 🍲 🍛 '
    + '🍣 🍱 🥟 🍤 🍙 🍚 🍘 🥮 🍢 🍡 🍧 🍨 🍦 🥧 🧁 🍰 🎂 🍮 🍭 🍬 🍫 🍿 🍩 🍪 ☕ 🍵 🧋 🥤 '
    + '🍺 🍻 🥂 🍷 🥃 🍸 🍹'],
  ['activities', '⚽ 🏀 🏈 ⚾ 🎾 🏐 🏉 🎱 🏓 🏸 🏒 ⛳ 🏹 🎣 🥊 🥋 ⛸️ 🎿 🏂 🏋️ 🚴 🏊 🧘 🏆 '
    + '🥇 🥈 🥉 🏅 🎖️ 🎫 🎪 🎭 🎨 🎬 🎤 🎧 🎼 🎹 🥁 🎷 🎺 🎸 🎻 🎲 🧩 🎮 🎯 🎳 🎉 🎊 🎈 🎁 '
    + '🎀 🎄 🎃 🎆 🎇 🧨'],
  ['travel', '🚗 🚕 🚙 🚌 🚎 🏎️ 🚓 🚑 🚒 🚐 🚚 🚜 🛵 🏍️ 🚲 🛴 🚨 🚍 🚘 🚖 🚠 🚃 🚄 🚅 🚂 '
    + '🚆 🚇 ✈️ 🛫 🛬 🚀 🛸 🚁 ⛵ 🚤 🛳️ 🚢 ⚓ 🗺️ 🗽 🗼 🏰 🏯 🏟️ 🎡 🎢 🏖️ 🏝️ 🏜️ 🌋 ⛰️ 🏔️ '
    + '🏕️ 🏠 🏡 🏢 🏥 🏦 🏨 🏪 🏫 ⛪ 🕌 🌁 🌃 🌆 🌇 🌉 🌌'],
  ['objects', '⌚ 📱 💻 ⌨️ 🖥️ 🖨️ 🖱️ 💾 💿 📷 📸 📹 🎥 📞 ☎️ 📺 📻 🎙️ ⏰ ⌛ ⏳ 📡 🔋 🔌 '
    + '💡 🔦 🕯️ 💸 💵 💴 💶 💷 💰 💳 💎 🔧 🔨 🛠️ 🔩 ⚙️ 🧲 💣 🔪 🛡️ 🔮 💊 💉 🧬 🔬 🔭 🧹 '
    + '🧺 🔑 🗝️ 🚪 🛋️ 🛏️ 🧸 🖼️ 🛍️ 🛒 ✉️ 📩 📦 📫 📝 📁 📂 📅 📌 📎 🖊️ ✏️ 📏 📐 ✂️ 🔒 '
    + '🔓 📚 📖 🔖'],
  ['symbols', '❤️ 🧡 💛 💚 💙 💜 🖤 🤍 🤎 💔 ❣️ 💕 💞 💓 💗 💖 💘 💝 💟 ☮️ ☯️ 💯 ✅ ☑️ '
    + '✔️ ❌ ❎ ➕ ➖ ➗ ✖️ ❓ ❔ ❕ ❗ ‼️ ⁉️ 💤 💢 💬 💭 🗯️ ♻️ ⚠️ 🚫 ⛔ 📵 🆗 🆕 🆒 🆓 🆙 🔝 '
    + '🔜 🔙 ➡️ ⬅️ ⬆️ ⬇️ ↩️ ↪️ 🔄 🎵 🎶 ➰ ™️ ©️ ®️ 💲 ♠️ ♥️ ♦️ ♣️ 🃏 🀄 🔴 🟠 🟡 🟢 🔵 🟣 '
    + '⚫ ⚪ 🟥 🟩 🟦 🔶 🔷 🏁 🚩 🎌 🏳️ 🏴 🏳️‍🌈'],
];

export const EMOJI = CATEGORIES.map(([name, list]) => [name, list.split(' ').filter(Boolean)]);

/** A popover grid of emoji under `root` (the element with data-testid=emoji-picker). */
export class EmojiPicker {
  constructor(root, toggle, onPick) {
    this.root = root;
    this.toggleButton = toggle;
    this.onPick = onPick;
    this.built = false;
    toggle.addEventListener('click', (e) => {
      e.stopPropagation();
      this.toggle();
    });
    document.addEventListener('click', (e) => {
      if (!this.root.hidden && !this.root.contains(e.target) && e.target !== toggle) this.close();
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !this.root.hidden) this.close();
    });
  }

  build() {
    clear(this.root);
    const body = h('div', { class: 'emoji-body' });
    const nav = h('div', { class: 'emoji-nav', role: 'tablist' });
    for (const [name, list] of EMOJI) {
      const section = h('section', { class: 'emoji-section' },
        h('h4', { class: 'emoji-title' }, t(`emoji.${name}`)),
        h('div', { class: 'emoji-grid' }, list.map((ch) => h('button', {
          type: 'button', class: 'emoji-btn', 'data-testid': 'emoji', title: ch,
          on: { click: (e) => { e.stopPropagation(); this.onPick(ch); } },
        }, ch))));
      body.append(section);
      nav.append(h('button', {
        type: 'button', class: 'emoji-tab', title: t(`emoji.${name}`), 'aria-label': t(`emoji.${name}`),
        on: { click: (e) => { e.stopPropagation(); body.scrollTop = section.offsetTop - body.offsetTop; } },
      }, list[0]));
    }
    this.root.append(nav, body);
    this.built = true;
  }

  /** Rebuild the titles after a language switch (next time it opens). */
  relabel() {
    this.built = false;
    if (!this.root.hidden) this.build();
  }

  toggle() {
    if (this.root.hidden) this.open();
    else this.close();
  }

  open() {
    if (!this.built) this.build();
    this.root.hidden = false;
    this.toggleButton.setAttribute('aria-expanded', 'true');
    this.toggleButton.classList.add('active');
  }

  close() {
    this.root.hidden = true;
    this.toggleButton.setAttribute('aria-expanded', 'false');
    this.toggleButton.classList.remove('active');
  }
}
