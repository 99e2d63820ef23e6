// English and Chinese strings. The language follows navigator.language until the user picks
// one (stored in localStorage). Static markup names its strings with data-i18n (text),
// data-i18n-placeholder, data-i18n-title and data-i18n-aria-label; applyStatic() fills them.

const STORE_KEY = 'xmppd.lang';
export const LANGS = { en: 'English', zh: '中文' };

const en = {
  'app.name': 'xmppd Chat',
  'app.tagline': 'Chat with anyone on this server, right in your browser.',
  'app.loading': 'Loading…',
  'login.heading': 'Welcome back',
  'login.sub': 'Sign in to start chatting',
  'login.username': 'Username',
  'login.password': 'Password',
  'login.remember': 'Remember me',
  'login.submit': 'Sign in',
  'login.busy': 'Signing in…',
  'login.noAccount': 'New here?',
  'login.createAccount': 'Create an account',
  'register.heading': 'Create your account',
  'register.sub': 'Pick a username and a password',
  'register.submit': 'Create account',
  'register.busy': 'Creating…',
  'register.haveAccount': 'Already have an account?',
  'register.signIn': 'Sign in',
  'register.done': 'Account {user} created. You can sign in now.',
  'err.conflict': 'That exists already.',
  'err.not-authorized': 'Not authorized.',
  'err.not-acceptable': 'The server did not accept that.',
  'err.bad-request': 'The server did not understand that.',
  'err.not-allowed': 'This server does not allow that.',
  'err.forbidden': 'You are not allowed to do that.',
  'err.item-not-found': 'Not found.',
  'err.service-unavailable': 'The service is not available.',
  'err.remote-server-not-found': 'That server cannot be reached.',
  'err.resource-constraint': 'The server is out of room for that.',
  'err.policy-violation': 'That goes against the server’s rules.',
  'err.timeout': 'The server did not answer in time.',
  'err.disconnected': 'Not connected to the server.',
  'err.remote-connection-failed': 'Cannot reach the server.',
  'err.generic': 'Something went wrong.',
  'err.address': 'That is not a valid address.',
  'login.wrong': 'Wrong username or password.',
  'login.missing': 'Please fill in a username and a password.',
  'register.taken': 'That username is already taken.',
  'register.rejected': 'That username or password is not acceptable.',
  'header.profile': 'Profile',
  'header.logout': 'Log out',
  'header.language': 'Language',
  'tab.contacts': 'Contacts',
  'tab.groups': 'Groups',
  'contacts.add': 'Add friend',
  'contacts.empty': 'No contacts yet. Add a friend by their address to start chatting.',
  'requests.title': 'Friend requests',
  'requests.wants': 'wants to be your friend',
  'common.accept': 'Accept',
  'common.decline': 'Decline',
  'common.cancel': 'Cancel',
  'common.close': 'Close',
  'common.save': 'Save',
  'common.you': 'You',
  'presence.online': 'Online',
  'presence.away': 'Away',
  'presence.offline': 'Offline',
  'presence.dnd': 'Do not disturb',
  'myStatus.label': 'Your status',
  'myStatus.available': 'Available',
  'myStatus.away': 'Away',
  'myStatus.dnd': 'Do not disturb',
  'myStatus.message': 'Status message',
  'myStatus.placeholder': 'What’s up? (optional)',
  'myStatus.save': 'Set status',
  'notify.enable': 'Enable notifications',
  'notify.enabled': 'Notifications are on',
  'notify.groupTitle': '{nick} in {room}',
  'contact.pending': 'Friend request sent',
  'contact.stranger': 'Not in your contacts',
  'addContact.title': 'Add a friend',
  'addContact.jid': 'Address',
  'addContact.jidHint': 'name@{domain}',
  'addContact.note': 'Note',
  'addContact.noteHint': 'Hi, it’s me!',
  'addContact.submit': 'Send request',
  'addContact.sent': 'Friend request sent to {jid}',
  'addContact.self': 'That is your own address.',
  'groups.create': 'New group',
  'groups.empty': 'No groups yet. Create one and invite your friends.',
  'invitations.title': 'Invitations',
  'invitations.from': '{from} invites you',
  'createGroup.title': 'Create a group',
  'createGroup.name': 'Group name',
  'createGroup.nameHint': 'Weekend hikers',
  'createGroup.description': 'Description',
  'createGroup.descriptionHint': 'What is this group about?',
  'createGroup.submit': 'Create group',
  'createGroup.nameMissing': 'Give the group a name.',
  'chat.emptyTitle': 'Pick a conversation',
  'chat.emptySub': 'Choose a friend or a group on the left, or add a friend to start chatting.',
  'chat.placeholder': 'Write a message…',
  'chat.send': 'Send',
  'chat.emoji': 'Emoji',
  'chat.attach': 'Send a file or photo',
  'chat.editLast': 'Edit your last message',
  'chat.editing': 'Editing message',
  'chat.cancelEdit': 'Cancel editing',
  'chat.loadMore': 'Load earlier messages',
  'chat.noMessages': 'No messages yet. Say hello!',
  'chat.typing': '{name} is typing…',
  'chat.edited': 'edited',
  'chat.sent': 'Sent',
  'chat.delivered': 'Delivered',
  'chat.remove': 'Remove friend',
  'chat.removed': '{name} was removed from your friends',
  'chat.back': 'Back',
  'chat.uploading': 'Uploading {name}…',
  'chat.uploadFailed': 'Upload failed: {text}',
  'chat.drop': 'Drop files to send them',
  'chat.photo': 'Photo',
  'chat.file': 'File',
  'chat.openImage': 'Open image',
  'day.today': 'Today',
  'day.yesterday': 'Yesterday',
  'group.members': 'Members',
  'group.membersCount': '{n} members',
  'group.memberOne': '1 member',
  'group.invite': 'Invite friends',
  'group.rename': 'Rename group',
  'group.leave': 'Leave group',
  'group.left': 'You left {name}',
  'group.kick': 'Remove',
  'group.kicked': '{nick} was removed',
  'group.kickedYou': 'You were removed from {name}',
  'group.destroyed': 'The group {name} was closed',
  'group.you': 'you',
  'group.notJoined': 'You are not in this group',
  'invite.title': 'Invite a friend',
  'invite.who': 'Friend',
  'invite.submit': 'Send invitation',
  'invite.none': 'No friends to invite yet.',
  'invite.sent': 'Invitation sent to {jid}',
  'rename.title': 'Rename group',
  'rename.name': 'New name',
  'rename.submit': 'Rename',
  'role.owner': 'owner',
  'role.admin': 'admin',
  'role.member': 'member',
  'role.moderator': 'moderator',
  'role.participant': 'participant',
  'role.visitor': 'visitor',
  'role.none': 'guest',
  'profile.title': 'Your profile',
  'profile.nick': 'Nickname',
  'profile.nickHint': 'How friends see you',
  'profile.avatar': 'Change photo',
  'profile.address': 'Your address',
  'profile.saved': 'Profile saved',
  'profile.avatarSaved': 'Photo updated',
  'status.connecting': 'Reconnecting…',
  'status.offline': 'Disconnected from the server',
  'emoji.smileys': 'Smileys',
  'emoji.people': 'People',
  'emoji.animals': 'Animals & nature',
  'emoji.food': 'Food & drink',
  'emoji.activities': 'Activities',
  'emoji.travel': 'Travel & places',
  'emoji.objects': 'Objects',
  'emoji.symbols': 'Symbols',
};

const zh = {
  'app.name': 'xmppd 聊天',
  'app.tagline': '无需安装，在浏览器里和这台服务器上的任何人聊天。',
  'app.loading': '加载中…',
  'login.heading': '欢迎回来',
  'login.sub': '登录后开始聊天',
  'login.username': '用户名',
  'login.password': '密码',
  'login.remember': '记住我',
  'login.submit': '登录',
  'login.busy': '正在登录…',
  'login.noAccount': '还没有账号？',
  'login.createAccount': '注册新账号',
  'register.heading': '创建账号',
  'register.sub': '设置用户名和密码',
  'register.submit': '注册',
  'register.busy': '正在注册…',
  'register.haveAccount': '已有账号？',
  'register.signIn': '去登录',
  'register.done': '账号 {user} 已创建，现在可以登录了。',
  'err.conflict': '已经存在。',
  'err.not-authorized': '未授权。',
  'err.not-acceptable': '服务器不接受此操作。',
  'err.bad-request': '服务器无法理解此请求。',
  'err.not-allowed': '服务器不允许此操作。',
  'err.forbidden': '你没有权限执行此操作。',
  'err.item-not-found': '未找到。',
  'err.service-unavailable': '服务暂不可用。',
  'err.remote-server-not-found': '无法连接到该服务器。',
  'err.resource-constraint': '服务器空间不足。',
  'err.policy-violation': '这违反了服务器的规则。',
  'err.timeout': '服务器没有及时响应。',
  'err.disconnected': '未连接到服务器。',
  'err.remote-connection-failed': '无法连接到服务器。',
  'err.generic': '出错了。',
  'err.address': '这不是有效的地址。',
  'login.wrong': '用户名或密码错误。',
  'login.missing': '请填写用户名和密码。',
  'register.taken': '该用户名已被占用。',
  'register.rejected': '用户名或密码不符合要求。',
  'header.profile': '个人资料',
  'header.logout': '退出登录',
  'header.language': '语言',
  'tab.contacts': '联系人',
  'tab.groups': '群组',
  'contacts.add': '添加好友',
  'contacts.empty': '还没有联系人。输入好友的地址添加好友，开始聊天吧。',
  'requests.title': '好友请求',
  'requests.wants': '请求添加你为好友',
  'common.accept': '接受',
  'common.decline': '拒绝',
  'common.cancel': '取消',
  'common.close': '关闭',
  'common.save': '保存',
  'common.you': '我',
  'presence.online': '在线',
  'presence.away': '离开',
  'presence.offline': '离线',
  'presence.dnd': '请勿打扰',
  'myStatus.label': '我的状态',
  'myStatus.available': '在线',
  'myStatus.away': '离开',
  'myStatus.dnd': '请勿打扰',
  'myStatus.message': '状态消息',
  'myStatus.placeholder': '在做什么？（可选）',
  'myStatus.save': '设置状态',
  'notify.enable': '开启通知',
  'notify.enabled': '已开启通知',
  'notify.groupTitle': '{nick}（{room}）',
  'contact.pending': '已发送好友请求',
  'contact.stranger': '不在你的联系人中',
  'addContact.title': '添加好友',
  'addContact.jid': '地址',
  'addContact.jidHint': 'name@{domain}',
  'addContact.note': '附言',
  'addContact.noteHint': '你好，我是……',
  'addContact.submit': '发送请求',
  'addContact.sent': '已向 {jid} 发送好友请求',
  'addContact.self': '这是你自己的地址。',
  'groups.create': '新建群组',
  'groups.empty': '还没有群组。创建一个并邀请好友吧。',
  'invitations.title': '群组邀请',
  'invitations.from': '{from} 邀请你加入',
  'createGroup.title': '创建群组',
  'createGroup.name': '群组名称',
  'createGroup.nameHint': '周末徒步',
  'createGroup.description': '群组简介',
  'createGroup.descriptionHint': '这个群组是做什么的？',
  'createGroup.submit': '创建群组',
  'createGroup.nameMissing': '请填写群组名称。',
  'chat.emptyTitle': '选择一个会话',
  'chat.emptySub': '从左侧选择好友或群组，或者添加好友开始聊天。',
  'chat.placeholder': '输入消息…',
  'chat.send': '发送',
  'chat.emoji': '表情',
  'chat.attach': '发送文件或图片',
  'chat.editLast': '编辑上一条消息',
  'chat.editing': '正在编辑消息',
  'chat.cancelEdit': '取消编辑',
  'chat.loadMore': '加载更早的消息',
  'chat.noMessages': '还没有消息，打个招呼吧！',
  'chat.typing': '{name} 正在输入…',
  'chat.edited': '已编辑',
  'chat.sent': '已发送',
  'chat.delivered': '已送达',
  'chat.remove': '删除好友',
  'chat.removed': '已删除好友 {name}',
  'chat.back': '返回',
  'chat.uploading': '正在上传 {name}…',
  'chat.uploadFailed': '上传失败：{text}',
  'chat.drop': '松开即可发送文件',
  'chat.photo': '图片',
  'chat.file': '文件',
  'chat.openImage': '查看大图',
  'day.today': '今天',
  'day.yesterday': '昨天',
  'group.members': '成员',
  'group.membersCount': '{n} 位成员',
  'group.memberOne': '1 位成员',
  'group.invite': '邀请好友',
  'group.rename': '重命名群组',
  'group.leave': '退出群组',
  'group.left': '你已退出 {name}',
  'group.kick': '移出',
  'group.kicked': '已将 {nick} 移出群组',
  'group.kickedYou': '你已被移出群组 {name}',
  'group.destroyed': '群组 {name} 已解散',
  'group.you': '我',
  'group.notJoined': '你已不在这个群组中',
  'invite.title': '邀请好友',
  'invite.who': '好友',
  'invite.submit': '发送邀请',
  'invite.none': '还没有可以邀请的好友。',
  'invite.sent': '已邀请 {jid}',
  'rename.title': '重命名群组',
  'rename.name': '新名称',
  'rename.submit': '重命名',
  'role.owner': '群主',
  'role.admin': '管理员',
  'role.member': '成员',
  'role.moderator': '主持人',
  'role.participant': '参与者',
  'role.visitor': '访客',
  'role.none': '访客',
  'profile.title': '个人资料',
  'profile.nick': '昵称',
  'profile.nickHint': '好友看到的名字',
  'profile.avatar': '更换头像',
  'profile.address': '你的地址',
  'profile.saved': '资料已保存',
  'profile.avatarSaved': '头像已更新',
  'status.connecting': '正在重新连接…',
  'status.offline': '与服务器的连接已断开',
  'emoji.smileys': '笑脸',
  'emoji.people': '人物',
  'emoji.animals': '动物与自然',
  'emoji.food': '食物饮料',
  'emoji.activities': '活动',
  'emoji.travel': '旅行与地点',
  'emoji.objects': '物品',
  'emoji.symbols': '符号',
};

const DICTS = { en, zh };
const listeners = new Set();

function detect() {
  try {
    const stored = localStorage.getItem(STORE_KEY);
    if (stored && DICTS[stored]) return stored;
  } catch {
    // storage may be unavailable; fall back to the browser's language
  }
  const wanted = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || 'en'];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (DICTS[base]) return base;
  }
  return 'en';
}

let current = detect();

export function lang() {
  return current;
}

/** The locale tag for Intl and <html lang>. */
export function locale() {
  return current === 'zh' ? 'zh-CN' : 'en';
}

/** The string for `key` with {name} placeholders filled from `params` (as plain text). */
export function t(key, params = {}) {
  const text = DICTS[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/**
 * The text for a server error (XmppError {condition, text}) or any thrown value; `special`
 * maps conditions to keys meant for the situation (e.g. conflict -> 'register.taken').
 */
export function errorText(err, special = {}) {
  const condition = err && err.condition;
  if (condition && special[condition]) return t(special[condition]);
  if (condition && (DICTS[current][`err.${condition}`] || en[`err.${condition}`])) {
    return t(`err.${condition}`);
  }
  if (err && err.text) return err.text;
  if (err && err.message) return err.message;
  return t('err.generic');
}

/** Fill the static strings of `root` (data-i18n* attributes). */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) {
    el.setAttribute('title', t(el.dataset.i18nTitle));
  }
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  }
  document.documentElement.lang = locale();
}

/** Switch the language, remember it and tell the listeners. */
export function setLang(next) {
  if (!DICTS[next] || next === current) return;
  current = next;
  try {
    localStorage.setItem(STORE_KEY, next);
  } catch {
    // not remembered, but still switched
  }
  applyStatic();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

export function formatTime(date) {
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit' }).format(date);
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth()
    && a.getDate() === b.getDate();
}

export function formatDay(date) {
  const now = new Date();
  if (sameDay(date, now)) return t('day.today');
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (sameDay(date, yesterday)) return t('day.yesterday');
  const opts = { month: 'long', day: 'numeric', weekday: 'short' };
  if (date.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return new Intl.DateTimeFormat(locale(), opts).format(date);
}

/** Short time for list rows: the time today, else the date. */
export function formatShort(date) {
  const now = new Date();
  if (sameDay(date, now)) return formatTime(date);
  return new Intl.DateTimeFormat(locale(), { month: 'short', day: 'numeric' }).format(date);
}
