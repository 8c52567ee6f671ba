DROP TABLE desktop_tunnels;
