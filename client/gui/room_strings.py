"""The window's words for rooms, in English and Spanish (merged into ``strings.EN`` and ``strings.ES``).

Apart from the rest of the catalogue so that neither file grows past what
one reads at once; the same rules hold: the same keys and fields in both.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "new_room_button": "+ New room",
    "new_room_title": "New room",
    "new_room_label": "Room name",
    "new_room_hint": "Letters, digits and _ - . (up to 32).",
    "new_room_open": "Open: anyone on this relay may join",
    "new_room_invite": "Invite-only: its admins add people",
    "create": "Create",
    "err_room_label_empty": "Type a name for the room.",
    "err_room_label": "That room name is not allowed: use letters, digits and _ - . (up to 32).",
    "room_created_notice": "You created {room}. {policy}",
    "policy_open": "Anyone on this relay may join it.",
    "policy_invite": "Only people its admins add can join it.",
    "room_header_members": "{room} · {count} members, {online} online",
    "invited_notice": "{by} added you to {room}.",
    "member_added_notice": "{by} added {name}.",
    "member_joined_room_notice": "{name} joined the room.",
    "member_removed_notice": "{by} removed {name}.",
    "member_left_room_notice": "{name} left the room.",
    "you_removed_notice": "{by} removed you from {room}. You no longer get its messages.",
    "you_left_notice": "You left {room}.",
    "you_joined_room_notice": "You joined {room}.",
    "room_members_notice": "Members: {names}",
    "room_not_member": "You are not a member of {room}.",
    "members_title": "Members of {room}",
    "member_online": "online",
    "member_offline": "offline",
    "tooltip_room_member": "{name}\nFingerprint: {fingerprint}\n{trust}\n{presence}",
    "invite_button": "Invite…",
    "invite_title": "Invite to {room}",
    "invite_intro": "Only people whose key you have (you have seen them on this relay) can be invited.",
    "invite_name": "Name",
    "invite": "Invite",
    "err_invite_unknown": "You have never seen {name}: they must be online here once, so that their key is known.",
    "err_invite_member": "{name} is already a member of {room}.",
    "err_room_action": "The room's rules refuse it: {detail}",
    # policy changes, promotions (the verified log's entries, in words)
    "promoted_notice": "{by} made {name} an admin.",
    "promoted_you_notice": "{by} made you an admin of {room}.",
    "demoted_notice": "{by} removed {name} as admin.",
    "demoted_you_notice": "{by} removed you as admin of {room}.",
    "policy_open_notice": "{by} opened the room: anyone on this relay may join it.",
    "policy_invite_notice": "{by} made the room invite-only: its admins decide who joins.",
    # typed room commands
    "help_create": "create a room (--open: anyone may join it) and go to it",
    "help_join": "go to the room LABEL, joining it if it is open",
    "help_invite": "add NAME to this room (someone you have seen here)",
    "help_rooms": "list your rooms",
    "help_members": "list this room's members",
    "help_leave": "leave this room",
    "help_remove": "remove NAME from this room (admins)",
    "help_promote": "make NAME an admin of this room (admins)",
    "help_forget-room": "forget which room LABEL names here (after the relay lost it): the next /join LABEL "
    "takes the room the relay names then",
    "help_resume-room": "after a fork, go on sending to LABEL at the history verified here",
    "err_forget_unknown": "No room is known here under the name {label}: there is nothing to forget.",
    "room_forgotten_notice": "{label} no longer names {room} here. The next /join {label} takes the room the "
    "relay names then, checked from its first entry like a room never seen.",
    "err_resume_unknown": "No room called {label} is known here.",
    "err_not_forked": "{room} has not forked: there is nothing to resume.",
    "room_resumed_notice": "You go on sending to {room} at the history verified here. The other history may "
    "hold removals: whoever it removed still gets your messages. A new fork stops sending again.",
    "help_invites": "rooms someone added you to, waiting for your answer",
    "help_accept-invite": "follow the room LABEL you were invited to (Accept, under Invitations)",
    "help_decline-invite": "let the invitation to LABEL go: nothing of the room is kept",
    "err_not_in_a_room": "Type {command} in a room's conversation: choose the room on the left first.",
    "err_not_a_member_of": "{name} is not a member of {room}.",
    "err_not_admin": "Only an admin of {room} can do that.",
    "err_yourself": "That is you: to leave the room, use Leave room.",
    "err_join_invite_only": "{room} is invite-only: ask one of its admins to invite you.",
    "err_join_unknown": "The relay has no room called {room} that you may join: there is none, or it is "
    "invite-only and its admins have not added you.",
    "joining_notice": "Looking for the room {room}…",
    "rooms_notice": "Rooms: {names}",
    "rooms_none": "You are in no room yet: + New room, or /create NAME.",
    # remove, make admin, leave: each asks first
    "remove_button": "Remove",
    "promote_button": "Make admin",
    "leave_button": "Leave room",
    "confirm_remove_title": "Remove {name}?",
    "confirm_remove": "Remove {name} from {room}? They will no longer get the room's messages. An admin can "
    "add them again later.",
    "confirm_promote_title": "Make {name} an admin?",
    "confirm_promote": "Make {name} an admin of {room}? Admins can add and remove people, including you, "
    "and this cannot be undone by you alone.",
    "confirm_leave_title": "Leave {room}?",
    "confirm_leave": "Leave {room}? You will no longer get its messages. To come back, one of its admins "
    "must add you again.",
    "confirm_leave_open": "Leave {room}? You will no longer get its messages. It is open: you can join it "
    "again with /join {label}.",
    "do_remove": "Remove",
    "do_promote": "Make admin",
    "do_leave": "Leave",
    "invitations_title": "Invitations",
    "invitation_row": "{by} invited you to {room}",
    "invitation_row_stranger": "{by}, whom you have not met, invited you to {room}",
    "invitation_row_other_key": "Someone who is NOT the {by} you know (another identity key uses that name) "
    "invited you to {room}",
    "invitation_hint": "Accept or decline it under Invitations, on the left: until you accept, only this "
    "invitation is kept, none of the room's log.",
    "invitation_restored_hint": "It was waiting when you last closed Susurro, and is checked again now: accept "
    "or decline it under Invitations, on the left.",
    "invitation_dropped_notice": "The invitation from {by} to {room} was let go to make room for newer ones "
    "({count} invitations were waiting). To accept it anyway, type /join {label}.",
    "invitation_dropped_one": "The invitation from {by} to {room} was let go to make room for newer ones "
    "({count} invitations from {by} were waiting). To accept it anyway, type /join {label}.",
    "accept_waiting_notice": "You accepted {by}'s invitation to {room} before you last closed Susurro, and its "
    "log had not come from the relay: it is asked for again now.",
    "check_waiting_notice": "{room}, a room you did not ask for, waits to be checked: {count} such rooms come "
    "first. If someone invited you to it, you will see the invitation here.",
    "check_dropped_notice": "{room}, a room you did not ask for, was not checked: too many such rooms were "
    "waiting. If someone invited you to it, type /join {label} to accept it.",
    "invitation_withdrawn_notice": "The invitation from {by} to {room} was withdrawn: the room's log no longer "
    "lists you (you were removed before you answered).",
    "invitation_accepted_notice": "You accepted the invitation to {room}: its membership is being verified.",
    "invitation_declined_notice": "You declined the invitation to {room}: nothing of it is kept, and the room is "
    "not told.",
    "accept_invitation": "Accept",
    "decline_invitation": "Decline",
    "no_invitations_notice": "No invitations are waiting.",
    "err_no_invitation": "No invitation to a room called {room} is waiting.",
    "err_two_invitations": "Two invitations are for rooms called {room}: use Accept or Decline under Invitations.",
}

ES: dict[str, str] = {
    "new_room_button": "+ Nueva sala",
    "new_room_title": "Nueva sala",
    "new_room_label": "Nombre de la sala",
    "new_room_hint": "Letras, dígitos y _ - . (hasta 32).",
    "new_room_open": "Abierta: cualquiera en este relé puede entrar",
    "new_room_invite": "Solo con invitación: la gente la añaden sus administradores",
    "create": "Crear",
    "err_room_label_empty": "Escribe un nombre para la sala.",
    "err_room_label": "Ese nombre de sala no vale: usa letras, dígitos y _ - . (hasta 32).",
    "room_created_notice": "Has creado {room}. {policy}",
    "policy_open": "Cualquiera en este relé puede entrar.",
    "policy_invite": "Solo pueden entrar las personas que añadan sus administradores.",
    "room_header_members": "{room} · {count} miembros, {online} conectados",
    "invited_notice": "{by} te ha añadido a {room}.",
    "member_added_notice": "{by} ha añadido a {name}.",
    "member_joined_room_notice": "{name} ha entrado en la sala.",
    "member_removed_notice": "{by} ha quitado a {name}.",
    "member_left_room_notice": "{name} ha salido de la sala.",
    "you_removed_notice": "{by} te ha quitado de {room}. Ya no recibes sus mensajes.",
    "you_left_notice": "Has salido de {room}.",
    "you_joined_room_notice": "Has entrado en {room}.",
    "room_members_notice": "Miembros: {names}",
    "room_not_member": "No eres miembro de {room}.",
    "members_title": "Miembros de {room}",
    "member_online": "conectado",
    "member_offline": "sin conexión",
    "tooltip_room_member": "{name}\nHuella: {fingerprint}\n{trust}\n{presence}",
    "invite_button": "Invitar…",
    "invite_title": "Invitar a {room}",
    "invite_intro": "Solo puedes invitar a personas cuya clave tienes (las has visto en este relé).",
    "invite_name": "Nombre",
    "invite": "Invitar",
    "err_invite_unknown": "Nunca has visto a {name}: tiene que conectarse aquí una vez para que se conozca su clave.",
    "err_invite_member": "{name} ya es miembro de {room}.",
    "err_room_action": "Las reglas de la sala no lo permiten",
    "promoted_notice": "{by} ha hecho administrador a {name}.",
    "promoted_you_notice": "{by} te ha hecho administrador de {room}.",
    "demoted_notice": "{by} ha quitado a {name} de administrador.",
    "demoted_you_notice": "{by} te ha quitado de administrador de {room}.",
    "policy_open_notice": "{by} ha abierto la sala: cualquiera en este relé puede entrar.",
    "policy_invite_notice": "{by} ha hecho la sala solo con invitación: solo entran las personas que añadan sus "
    "administradores.",
    "help_create": "crear una sala (--open: cualquiera puede entrar) e ir a ella",
    "help_join": "ir a la sala SALA, entrando si es abierta",
    "help_invite": "añadir a NOMBRE a esta sala (alguien a quien has visto aquí)",
    "help_rooms": "tus salas",
    "help_members": "los miembros de esta sala",
    "help_leave": "salir de esta sala",
    "help_remove": "quitar a NOMBRE de esta sala (administradores)",
    "help_promote": "hacer administrador de esta sala a NOMBRE (administradores)",
    "help_forget-room": "olvidar qué sala nombra SALA aquí (si el relé la perdió): el próximo /join SALA "
    "toma la sala que el relé nombre entonces",
    "help_resume-room": "tras una bifurcación, seguir enviando a SALA con la historia verificada aquí",
    "err_forget_unknown": "Aquí no se conoce ninguna sala con el nombre {label}: no hay nada que olvidar.",
    "room_forgotten_notice": "{label} ya no nombra {room} aquí. El próximo /join {label} toma la sala que el "
    "relé nombre entonces, comprobada desde su primera entrada como una sala nunca vista.",
    "err_resume_unknown": "Aquí no se conoce ninguna sala llamada {label}.",
    "err_not_forked": "{room} no se ha bifurcado: no hay nada que reanudar.",
    "room_resumed_notice": "Sigues enviando a {room} con la historia verificada aquí. La otra historia puede "
    "tener bajas: quien haya quitado sigue recibiendo tus mensajes. Una nueva bifurcación detiene el envío otra "
    "vez.",
    "help_invites": "salas a las que alguien te añadió, esperando tu respuesta",
    "help_accept-invite": "seguir la sala SALA a la que te invitaron (Aceptar, en Invitaciones)",
    "help_decline-invite": "descartar la invitación a SALA: no se guarda nada de la sala",
    "err_not_in_a_room": "Escribe {command} en la conversación de una sala: elige antes la sala a la izquierda.",
    "err_not_a_member_of": "{name} no es miembro de {room}.",
    "err_not_admin": "Solo un administrador de {room} puede hacer eso.",
    "err_yourself": "Eres tú: para salir de la sala, usa Salir de la sala.",
    "err_join_invite_only": "{room} es solo con invitación: pide a uno de sus administradores que te invite.",
    "err_join_unknown": "El relé no tiene ninguna sala llamada {room} en la que puedas entrar: no existe, o es "
    "solo con invitación y sus administradores no te han añadido.",
    "joining_notice": "Buscando la sala {room}…",
    "rooms_notice": "Salas: {names}",
    "rooms_none": "Aún no estás en ninguna sala: + Nueva sala, o /create NOMBRE.",
    "remove_button": "Quitar",
    "promote_button": "Hacer admin",
    "leave_button": "Salir de la sala",
    "confirm_remove_title": "¿Quitar a {name}?",
    "confirm_remove": "¿Quitar a {name} de {room}? Ya no recibirá los mensajes de la sala. Un administrador "
    "puede volver a añadirle más adelante.",
    "confirm_promote_title": "¿Hacer administrador a {name}?",
    "confirm_promote": "¿Hacer administrador de {room} a {name}? Los administradores pueden añadir y quitar "
    "a gente, también a ti, y tú solo no puedes deshacerlo.",
    "confirm_leave_title": "¿Salir de {room}?",
    "confirm_leave": "¿Salir de {room}? Ya no recibirás sus mensajes. Para volver, uno de sus administradores "
    "tiene que añadirte otra vez.",
    "confirm_leave_open": "¿Salir de {room}? Ya no recibirás sus mensajes. Es abierta: puedes volver a entrar "
    "con /join {label}.",
    "do_remove": "Quitar",
    "do_promote": "Hacer admin",
    "do_leave": "Salir",
    "invitations_title": "Invitaciones",
    "invitation_row": "{by} te invitó a {room}",
    "invitation_row_stranger": "{by}, a quien no conoces, te invitó a {room}",
    "invitation_row_other_key": "Alguien que NO es el {by} que conoces (otra clave de identidad usa ese nombre) "
    "te invitó a {room}",
    "invitation_hint": "Acéptala o recházala en Invitaciones, a la izquierda: hasta que aceptes, solo se guarda "
    "esta invitación, nada del registro de la sala.",
    "invitation_restored_hint": "Estaba esperando cuando cerraste Susurro, y ahora se comprueba de nuevo: "
    "acéptala o recházala en Invitaciones, a la izquierda.",
    "invitation_dropped_notice": "Se descartó la invitación de {by} a {room} para dejar sitio a otras más "
    "nuevas (había {count} invitaciones esperando). Para aceptarla igualmente, escribe /join {label}.",
    "invitation_dropped_one": "Se descartó la invitación de {by} a {room} para dejar sitio a otras más "
    "nuevas (había {count} invitaciones de {by} esperando). Para aceptarla igualmente, escribe /join {label}.",
    "accept_waiting_notice": "Aceptaste la invitación de {by} a {room} antes de cerrar Susurro, y su registro no "
    "había llegado del relé: ahora se pide de nuevo.",
    "check_waiting_notice": "{room}, una sala que no pediste, espera a ser comprobada: antes van {count} salas "
    "así. Si alguien te invitó a ella, verás aquí la invitación.",
    "check_dropped_notice": "{room}, una sala que no pediste, no se comprobó: había demasiadas salas así "
    "esperando. Si alguien te invitó a ella, escribe /join {label} para aceptarla.",
    "invitation_withdrawn_notice": "Se retiró la invitación de {by} a {room}: el registro de la sala ya no te "
    "incluye (te quitaron antes de que respondieras).",
    "invitation_accepted_notice": "Aceptaste la invitación a {room}: se están verificando sus miembros.",
    "invitation_declined_notice": "Rechazaste la invitación a {room}: no se guarda nada de ella y la sala no se "
    "entera.",
    "accept_invitation": "Aceptar",
    "decline_invitation": "Rechazar",
    "no_invitations_notice": "No hay invitaciones esperando.",
    "err_no_invitation": "No hay ninguna invitación esperando a una sala llamada {room}.",
    "err_two_invitations": "Hay dos invitaciones a salas llamadas {room}: usa Aceptar o Rechazar en Invitaciones.",
}
