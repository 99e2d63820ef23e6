// Groups (XEP-0045 rooms): the list with unread counts, invitations (XEP-0249 / mediated),
// creating a group, the members panel with roles and kicks, inviting friends, renaming
// (owners) and leaving.
import { h, byTestId, replace } from './dom.js';
import { errorText, formatShort, t } from './i18n.js';
import { avatar } from './avatar.js';
import { contactName } from './contacts.js';
import { preview } from './messages.js';
import { local } from '../xmpp/jid.js';

/** "3 members" (one: "1 member"). */
export function membersText(n) {
  return n === 1 ? t('group.memberOne') : t('group.membersCount', { n });
}

const RANK = { owner: 0, admin: 1, member: 2, none: 3, outcast: 4 };

/** The role text of an occupant: the affiliation if any, else the role. */
function roleKey(o) {
  return o.affiliation && o.affiliation !== 'none' ? o.affiliation : (o.role || 'none');
}

export class GroupsView {
  constructor(app) {
    this.app = app;
    this.list = byTestId('groups');
    this.empty = document.getElementById('groups-empty');
    this.invitations = document.getElementById('invitations');
    this.invitationsBlock = document.getElementById('invitations-block');
    this.panel = document.getElementById('members-panel');
    this.members = byTestId('members');
    this.createDialog = document.getElementById('dlg-create-group');
    this.inviteDialog = document.getElementById('dlg-invite');
    this.renameDialog = document.getElementById('dlg-rename');
    this.target = null; // the room of the invite / rename dialog
    byTestId('create-group-open').addEventListener('click', () => this.openCreate());
    document.getElementById('members-close').addEventListener('click', () => this.closeMembers());
    app.bindDialog(this.createDialog, (form) => this.create(form));
    app.bindDialog(this.inviteDialog, (form) => this.invite(form));
    app.bindDialog(this.renameDialog, (form) => this.rename(form));
  }

  get client() {
    return this.app.client;
  }

  roomName(jid) {
    const room = this.client.rooms?.get(jid);
    return room?.name || local(jid) || jid;
  }

  // --- list ----------------------------------------------------------------------------

  render() {
    const { store } = this.app;
    const rows = [...(this.client.rooms?.values() || [])].map((room) => {
      const conv = store.peek(room.jid);
      return { room, conv, last: conv?.last || null, name: room.name || local(room.jid) || room.jid };
    });
    rows.sort((a, b) => (b.last?.stamp || 0) - (a.last?.stamp || 0) || a.name.localeCompare(b.name));
    replace(this.list, rows.map((row) => this.item(row)));
    this.renderInvitations();
  }

  item({ room, conv, last, name }) {
    const unread = conv?.unread || 0;
    const open = () => this.app.openChat(room.jid, 'group');
    const sub = last ? preview(last) : (room.description || (room.joined
      ? membersText(room.occupants?.size || 0) : t('group.notJoined')));
    return h('li', {
      class: ['item', this.app.active === room.jid && 'active', !room.joined && 'inactive'],
      'data-testid': 'group', 'data-jid': room.jid, role: 'button', tabindex: '0',
      on: { click: open, keydown: (e) => { if (e.key === 'Enter') open(); } },
    },
    h('span', { class: 'avatar-wrap' }, avatar({ key: room.jid, name, size: 'md' })),
    h('span', { class: 'item-main' },
      h('span', { class: 'item-top' },
        h('span', { class: 'item-name', 'data-testid': 'group-name-label' }, name),
        last ? h('time', { class: 'item-time' }, formatShort(last.stamp)) : null),
      h('span', { class: 'item-bottom' },
        h('span', { class: 'item-sub' }, sub),
        unread > 0 ? h('span', { class: 'badge', 'data-testid': 'unread' }, String(unread)) : null)));
  }

  renderInvitations() {
    const invitations = [...(this.client.invitations?.values() || [])];
    this.invitationsBlock.hidden = invitations.length === 0;
    replace(this.invitations, invitations.map((inv) => this.invitationItem(inv)));
    this.empty.hidden = (this.client.rooms?.size || 0) > 0 || invitations.length > 0;
  }

  invitationItem(inv) {
    const from = inv.from || '';
    const accept = h('button', { type: 'button', class: 'btn primary small', 'data-testid': 'invitation-accept' },
      t('common.accept'));
    const decline = h('button', { type: 'button', class: 'btn ghost small', 'data-testid': 'invitation-decline' },
      t('common.decline'));
    accept.addEventListener('click', async () => {
      accept.disabled = true;
      try {
        await this.client.acceptInvitation(inv.room);
        this.app.openChat(inv.room, 'group');
      } catch (err) {
        accept.disabled = false;
        this.app.toast(errorText(err), 'error');
      }
    });
    decline.addEventListener('click', async () => {
      decline.disabled = true;
      try {
        await this.client.declineInvitation(inv.room);
      } catch (err) {
        decline.disabled = false;
        this.app.toast(errorText(err), 'error');
      }
    });
    const fromName = from ? contactName(this.client, from) : '';
    const who = fromName && fromName !== local(from) ? `${fromName} (${from})` : from;
    // The inviter's reason names the group when it comes from this app (see invite()).
    const title = inv.reason || local(inv.room) || inv.room;
    return h('li', { class: 'card', 'data-testid': 'invitation', 'data-room': inv.room },
      h('div', { class: 'card-head' },
        avatar({ key: inv.room, name: title, size: 'md' }),
        h('div', { class: 'card-text' },
          h('strong', { class: 'card-title', title: inv.room }, title),
          h('span', { class: 'card-sub', 'data-testid': 'invitation-from', title: from },
            t('invitations.from', { from: who })))),
      h('div', { class: 'card-actions' }, decline, accept));
  }

  /** The client's 'room' event: a room changed, or we are out of it (kicked, ...). */
  onRoom({ jid, reason }) {
    this.render();
    if (this.app.active === jid) {
      this.app.chat.refreshHeader();
      if (!this.panel.hidden) this.renderMembers();
    }
    const name = this.roomName(jid);
    if (['kicked', 'banned', 'removed'].includes(reason)) {
      this.app.toast(t('group.kickedYou', { name }), 'error');
    } else if (reason === 'destroyed') {
      this.app.toast(t('group.destroyed', { name }), 'error');
    }
  }

  // --- create --------------------------------------------------------------------------

  openCreate() {
    byTestId('group-name').value = '';
    byTestId('group-description').value = '';
    this.app.openDialog(this.createDialog);
  }

  async create(form) {
    const name = form.elements.name.value.trim();
    if (!name) throw new Error(t('createGroup.nameMissing'));
    const description = form.elements.description.value.trim();
    const jid = await this.client.createRoom({ name, description });
    this.app.showTab('groups');
    this.app.openChat(jid, 'group');
  }

  // --- members -------------------------------------------------------------------------

  toggleMembers(jid) {
    if (this.panel.hidden) {
      this.panel.hidden = false;
      this.renderMembers(jid);
      this.markMembersButton();
    } else {
      this.closeMembers();
    }
  }

  closeMembers() {
    this.panel.hidden = true;
    this.markMembersButton();
  }

  markMembersButton() {
    const button = byTestId('group-members-open');
    if (button) button.classList.toggle('active', !this.panel.hidden);
  }

  canKick(room, o) {
    if (!room?.joined || o.nick === room.nick) return false;
    const mine = RANK[room.affiliation] ?? 3;
    const theirs = RANK[o.affiliation] ?? 3;
    // XEP-0045 §8.2: a moderator kicks, but not an owner or an admin (§5.2).
    return (room.role === 'moderator' || mine <= 1) && theirs >= 2;
  }

  renderMembers(jid = this.app.active) {
    const room = this.client.rooms?.get(jid);
    const occupants = [...(room?.occupants?.values() || [])];
    occupants.sort((a, b) => (RANK[a.affiliation] ?? 3) - (RANK[b.affiliation] ?? 3)
      || a.nick.localeCompare(b.nick));
    replace(this.members, occupants.map((o) => {
      const self = o.nick === room.nick;
      const kick = this.canKick(room, o)
        ? h('button', {
          type: 'button', class: 'btn ghost small danger', 'data-testid': 'member-kick',
          on: { click: (e) => this.kick(room.jid, o.nick, e.currentTarget) },
        }, t('group.kick'))
        : null;
      return h('li', { class: 'member', 'data-testid': 'member', 'data-nick': o.nick },
        avatar({ key: o.jid || o.nick, name: o.nick, size: 'sm', url: this.avatarOf(o.jid) }),
        h('span', { class: 'member-main' },
          h('span', { class: 'member-nick' }, o.nick, self ? h('span', { class: 'you' }, ` (${t('group.you')})`) : null),
          h('span', { class: ['member-role', `role-${roleKey(o)}`], 'data-testid': 'member-role' },
            t(`role.${roleKey(o)}`))),
        kick);
    }));
  }

  avatarOf(jid) {
    if (!jid) return null;
    if (jid === this.client.bareJid) return this.client.profile?.avatarUrl || null;
    return this.client.contacts?.get(jid)?.avatarUrl || null;
  }

  async kick(roomJid, nick, button) {
    button.disabled = true;
    try {
      await this.client.kick(roomJid, nick);
      this.app.toast(t('group.kicked', { nick }));
    } catch (err) {
      button.disabled = false;
      this.app.toast(errorText(err), 'error');
    }
  }

  // --- invite / rename / leave ---------------------------------------------------------

  openInvite(jid) {
    this.target = jid;
    const room = this.client.rooms?.get(jid);
    const inRoom = new Set([...(room?.occupants?.values() || [])].map((o) => o.jid).filter(Boolean));
    const friends = [...(this.client.contacts?.values() || [])]
      .filter((c) => !inRoom.has(c.jid))
      .map((c) => ({ jid: c.jid, name: contactName(this.client, c.jid) }))
      .sort((a, b) => a.name.localeCompare(b.name));
    const select = byTestId('invite-jid');
    replace(select, friends.map((f) => h('option', { value: f.jid },
      f.name === local(f.jid) ? f.jid : `${f.name} (${f.jid})`)));
    document.getElementById('invite-none').hidden = friends.length > 0;
    byTestId('invite-submit').disabled = friends.length === 0;
    this.app.openDialog(this.inviteDialog);
  }

  async invite(form) {
    const jid = form.elements.jid.value;
    if (!jid || !this.target) return false;
    // The group's name as the reason: the invitee sees which group it is (XEP-0249 'reason').
    await this.client.invite(this.target, jid, this.roomName(this.target));
    this.app.toast(t('invite.sent', { jid }));
    return true;
  }

  openRename(jid) {
    this.target = jid;
    byTestId('group-rename-input').value = this.roomName(jid);
    this.app.openDialog(this.renameDialog);
    byTestId('group-rename-input').select();
  }

  async rename(form) {
    const name = form.elements.name.value.trim();
    if (!name || !this.target) return false;
    await this.client.renameRoom(this.target, name);
    return true;
  }

  async leave(jid) {
    const name = this.roomName(jid);
    try {
      await this.client.leaveRoom(jid);
      this.app.store.conversations.delete(jid);
      if (this.app.active === jid) this.app.closeChat();
      this.render();
      this.app.toast(t('group.left', { name }));
    } catch (err) {
      this.app.toast(errorText(err), 'error');
    }
  }
}
